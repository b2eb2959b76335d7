"""Hostile feed documents against the parser: entity declarations anywhere and in any
encoding, markup that made text extraction quadratic, fields of any size, control
characters, documents too deep; and the parser processes' time budget."""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO, Story, rss

from monitor.errors import ParseError
from monitor.feeds.html_text import html_to_text
from monitor.feeds.parse import ParsedFeed, parse_feed

URL = "https://hostile.example/rss"
ENTITY = "A" * 3_000
TITLE_CHARS = 1_000  # a stored title is at most this long
USES = 2_000  # 6 MB once expanded
DECLARATION = f'<!DOCTYPE rss [\n<!ENTITY e "{ENTITY}">\n]>\n'
ROOT = (
    '<rss version="2.0"><channel><title>Hostile</title><item><title>Boom ' + "&e;" * USES + "</title>"
    "<link>https://hostile.example/1</link><description>Body " + "&e;" * USES + "</description></item></channel></rss>"
)


def longest_field(parsed: ParsedFeed) -> int:
    return max(len(value or "") for item in parsed.items for value in (item.title, item.text, item.link, item.author))


# Where a declaration may hide: each once the DOCTYPE guard's blind spot, or feedparser's way in.
PLACEMENTS = {
    "a stray '<' line before it": '<?xml version="1.0"?>\n< \n' + DECLARATION + ROOT,
    "stray text before it": "junk\n" + DECLARATION + ROOT,
    "after comments and instructions": '<?xml version="1.0"?>\n<!-- a -->\n<?pi x?>\n<!-- b -->\n' + DECLARATION + ROOT,
    "after whitespace": "\n\n   \n" + DECLARATION + ROOT,
    "lower case": "< \n" + DECLARATION.replace("DOCTYPE", "doctype") + ROOT,
    "an entity without a DOCTYPE": '< \n<!ENTITY e "' + ENTITY + '">\n' + ROOT,
    "NUL bytes inside the keywords": "< \n" + DECLARATION.replace("<!", "<!\x00") + ROOT,
    "inside the root element": ROOT.replace("<channel>", "<channel>\n" + DECLARATION),
}
ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8 with a BOM": lambda text: text.encode("utf-8-sig"),
    "utf-16 with a BOM": lambda text: text.encode("utf-16"),
    "utf-16-le without a BOM": lambda text: ("\n" + text).encode("utf-16-le"),
    "utf-16-be without a BOM": lambda text: ("\n" + text).encode("utf-16-be"),
    "utf-32 with a BOM": lambda text: text.encode("utf-32"),
    "utf-32-le without a BOM": lambda text: (" " + text).encode("utf-32-le"),
}


class TestEntityDeclarationsAnywhere:
    @pytest.mark.parametrize("placement", sorted(PLACEMENTS))
    @pytest.mark.parametrize("encoding", sorted(ENCODINGS))
    def test_no_declaration_is_expanded_wherever_and_however_encoded(self, placement: str, encoding: str) -> None:
        text = PLACEMENTS[placement].replace('<?xml version="1.0"?>', '<?xml version="1.0"?>')
        content = ENCODINGS[encoding](text)
        parsed = parse_feed(content, url=URL, content_type=None)
        [item] = parsed.items
        assert item.link == "https://hostile.example/1"  # the document was read, in its own encoding
        assert item.title.startswith("Boom")
        assert ENTITY[:100] not in item.title and ENTITY[:100] not in item.text
        assert longest_field(parsed) < 20_000

    def test_the_105_kb_probe_stays_small(self) -> None:
        refs = "&e;" * 34_000
        content = (
            f'<?xml version="1.0"?>\n< \n<!DOCTYPE rss [\n<!ENTITY e "{ENTITY}">\n]>\n'
            f'<rss version="2.0"><channel><title>t</title><item><title>{refs}</title>'
            "<link>https://x.example/1</link></item></channel></rss>"
        ).encode()
        assert 100_000 < len(content) < 110_000
        [item] = parse_feed(content, url=URL).items
        assert len(item.title) <= TITLE_CHARS  # 102,000,000 characters before

    def test_removing_a_declaration_never_joins_its_neighbours_into_a_new_one(self) -> None:
        # "<!" + (removed DOCTYPE) + "ENTITY ..." must not become "<!ENTITY ...".
        content = (
            '<?xml version="1.0"?>\n< \n<!DOCTYPE rss [\n<!<!DOCTYPE x>ENTITY e "' + ENTITY + '">\n]>\n' + ROOT
        ).encode()
        parsed = parse_feed(content, url=URL)
        assert all(ENTITY[:100] not in item.title + item.text for item in parsed.items)


class TestFieldsAreBounded:
    def test_every_field_of_an_rss_item_is_cut_to_size(self) -> None:
        content = rss(Story("g" * 5_000, "T" * 1_000_000, "word " * 200_000))
        content = content.replace(
            b"</item>", b"<author>" + b"a" * 100_000 + b"</author>" + b"<category>c</category>" * 5_000 + b"</item>"
        )
        [item] = parse_feed(content, url=URL, max_text_chars=5_000).items
        assert len(item.title) == TITLE_CHARS and item.title.endswith("…")
        assert len(item.text) <= 5_000 and item.text.endswith("…")
        assert len(item.author or "") <= 200
        assert item.tags == ("c",)
        assert item.guid is not None and len(item.guid) <= 1_000

    def test_a_json_feed_item_is_cut_to_size_too(self) -> None:
        doc = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "F" * 50_000,
            "items": [
                {
                    "id": "i" * 50_000,
                    "url": "https://x.example/" + "p" * 10_000,
                    "title": "T" * 1_000_000,
                    "content_text": "x" * 1_000_000,
                    "tags": [f"tag{n}" * 100 for n in range(1_000)],
                    "authors": [{"name": "N" * 100_000}],
                }
            ],
        }
        parsed = parse_feed(json.dumps(doc).encode(), url=URL, content_type="application/feed+json")
        [item] = parsed.items
        assert len(parsed.title or "") <= TITLE_CHARS
        assert len(item.title) <= TITLE_CHARS and len(item.text) <= 100_000
        assert item.link is None  # a link too long to be real is dropped, not cut into a wrong one
        assert len(item.tags) <= 64 and all(len(tag) <= 100 for tag in item.tags)
        assert item.guid is not None and item.guid.startswith("sha256:")


class TestControlCharacters:
    def test_nul_and_other_controls_are_removed_tabs_and_newlines_kept(self) -> None:
        description = "<p>First\x00 line\x07 \x1b[31mred\x1b[0m</p><p>Second\x7f\x85\x9b line</p>"
        content = rss(Story("c-1", "Title\x00 with\x01 NUL\x1b]0;pwned\x07", description))
        [item] = parse_feed(content, url=URL).items
        for field in (item.title, item.text):
            assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", field), repr(field)
        assert item.title == "Title with NUL]0;pwned"
        # feedparser reads C1 codes in HTML as the windows-1252 characters they usually are ("…", "›").
        assert item.text.startswith("First line [31mred[0m\nSecond")

    def test_json_strings_with_controls_and_lone_surrogates(self) -> None:
        body = (
            '{"version": "https://jsonfeed.org/version/1", "items": [{"id": "1", "title": "A\\u0000B\\ud800C\\u0085\\u009b",'
            ' "content_text": "one\\ttwo\\nthree\\u0000"}]}'
        ).encode()
        [item] = parse_feed(body, url=URL).items
        assert item.title == "AB\ufffdC"
        assert "\x00" not in item.text
        item.title.encode("utf-8")  # storable


class TestDocumentsTooDeepOrTooLarge:
    def test_json_nested_200000_deep_is_a_parse_error_with_a_reason(self) -> None:
        body = b'{"items":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        with pytest.raises(ParseError, match="nested too deeply"):
            parse_feed(body, url=URL, content_type="application/json")

    def test_running_out_of_memory_is_a_parse_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import monitor.feeds.parse as parse_module

        def exhausted(*args: object, **kwargs: object) -> object:
            raise MemoryError

        monkeypatch.setattr(parse_module.feedparser, "parse", exhausted)
        with pytest.raises(ParseError, match="more memory than the parser may use"):
            parse_feed(rss(Story("m", "Memory", "Text")), url=URL)


class TestTextExtractionIsLinear:
    @pytest.mark.parametrize(
        "html",
        [
            "<a " * 200_000,  # unclosed tags: 11 s at 8,000 before
            "<a b='" * 100_000,  # unclosed quotes
            "</ " * 200_000,
            "<!-- " * 200_000,
            "<noscript>" * 50_000 + "</noscript>" * 50_000,
            "<script>" * 100_000,
            "x <y " * 100_000,
        ],
        ids=["open-tags", "open-quotes", "end-tags", "comments", "nested-skips", "scripts", "lt-text"],
    )
    def test_hostile_markup_is_reduced_in_one_pass(self, html: str) -> None:
        # In a process of its own with a bound a thousand times what one pass needs:
        # the quadratic extraction would need hours for these.
        code = (
            "import sys; from monitor.feeds.html_text import html_to_text; print(len(html_to_text(sys.stdin.read())))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], input=html, capture_output=True, text=True, timeout=120, cwd=REPO
        )
        assert done.returncode == 0, done.stderr

    def test_an_escaped_description_of_16000_tags_parses(self) -> None:
        content = rss(Story("x", "Escaped", "<a " * 16_000))  # "&lt;a " in the XML: 45 s before
        [item] = parse_feed(content, url=URL).items
        assert item.title == "Escaped"

    def test_ordinary_markup_gives_what_html_parser_gives(self) -> None:
        pieces = [
            "<p>", "</p>", "<br>", "<br/>", '<a href="u?a=1&amp;b=2">', "</a>", "word ", "&amp;", "&#233;", " \n ",
            "<td>", "<li>", '<span title="a > b">', "</span>", "é", "&bogus;", "<h2>", "</h2>", "\u00ad", "\u00a0",
            "<!-- note -->", "<script>if (a < b) x()</script>", "<style>p{}</style>", "<noscript>", "</noscript>",
            "<template>", "</template>", "fish < chips", "<img src='x'/>", "<![CDATA[gone]]>", "<?pi?>", "</>",
        ]  # fmt: skip
        rng = random.Random(2026)
        for _ in range(3000):
            html = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
            assert html_to_text(html) == _reference_text(html), html


_SKIPPED = {"script", "style", "noscript", "template"}
_BLOCKS = {"p", "br", "li", "h2", "div", "tr", "ul"}


class _Reference(HTMLParser):
    """What html.parser makes of markup (the way text was extracted before, quadratic on hostile input)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in _SKIPPED:
            self.skipping.append(tag)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            if tag in self.skipping:
                del self.skipping[len(self.skipping) - 1 - self.skipping[::-1].index(tag) :]
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def _reference_text(html: str) -> str:
    reference = _Reference()
    reference.feed(html)
    reference.close()
    text = re.sub("[\u00ad\u200b\ufeff]", "", "".join(reference.parts))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still exists as a process that is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


class TestParserTimeBudget:
    def test_a_slow_parse_is_cut_off_its_process_replaced_and_others_go_on(self) -> None:
        slow = rss(*[Story(f"s-{n}", f"Story {n} " * 5, "Body <b>text</b> " * 40) for n in range(6_000)])  # ~9 MB
        normal = rss(Story("n-1", "Normal story", "Parsed while the slow one runs."))

        from monitor.parser_pool import ParserPool

        async def scenario() -> None:
            pool = ParserPool()
            try:
                before = set(await pool.pids())
                assert len(before) == 2

                async def cut_off() -> str:
                    with pytest.raises(ParseError) as caught:
                        await pool.parse(slow, "https://slow.example/rss", None, timeout=0.5)
                    return str(caught.value)

                async def meanwhile() -> ParsedFeed:
                    await asyncio.sleep(0.1)  # the slow parse has its process by now
                    return await pool.parse(normal, "https://normal.example/rss", None, timeout=60)

                reason, parsed = await asyncio.gather(cut_off(), meanwhile())
                assert reason == "https://slow.example/rss: parsing took longer than 0.5 s; the parser was restarted"
                assert [item.title for item in parsed.items] == ["Normal story"]
                after = set(await pool.pids())
                assert len(after) == 2 and len(after - before) == 1
                [killed] = before - after
                await asyncio.to_thread(lambda: _wait(lambda: not _alive(killed), "the killed parser to be reaped"))
                # The replacement parses.
                assert len((await pool.parse(normal, "https://normal.example/rss", None, timeout=60)).items) == 1
            finally:
                pids = await pool.pids()
                pool.close()
            assert not [pid for pid in pids if _alive(pid)]

        asyncio.run(scenario())

    def test_a_parser_process_cannot_take_more_than_its_memory_limit(self) -> None:
        from monitor.parser_pool import MEMORY_LIMIT, ParserPool

        async def scenario() -> None:
            pool = ParserPool(processes=1)
            try:
                pool.start()
                worker = pool._idle[-1]
                await worker.pid()
                with pytest.raises(MemoryError):
                    await asyncio.wrap_future(worker.pool.submit(bytearray, 2 * MEMORY_LIMIT))
            finally:
                pool.close()

        asyncio.run(scenario())


def _wait(condition: object, what: str, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
