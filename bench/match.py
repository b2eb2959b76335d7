"""How long matching one item takes, with the rule index and without.

Generates 10,000 watch rules of the kinds a newsroom writes and ~1,000
news-like items (about 200 words, a dozen entity mentions each), then prints
microseconds per item for RuleIndex.match and RuleIndex.match_naive at 100,
1,000 and 10,000 rules (the first N of the same 10,000).

The rules name people, organisations, places and topics, alone or combined
with AND/OR/NOT, NEAR, title:, site: and entity scopes; about 1% are regexes
and 0.3% pure negations. Rules and items pick names with the same popularity
skew, so famous people are in many rules and many items, as in real news.
Each figure is the best of --repeat passes; naive matching at 10,000 rules
runs on 200 items only.

    .venv/bin/python bench/match.py [--docs 1000] [--seed 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence

from monitor.items import KnownEntity, Mention
from monitor.rules.match import Document, Lexicon, RuleIndex, compile_rule

FIRST = (
    "Anna Maria Olga Elena Sofia Laura Ines Marta Julia Clara Nadia Amira Leila Fatima Mei Yuki "
    "Priya Aisha Grace Chloe Emma Hannah Ingrid Katya Lucia Noor Rosa Sara Tamar Zainab "
    "James John Robert Michael David Daniel Thomas Peter Paul Mark Ivan Sergei Dmitri Andrei Pavel "
    "Ahmed Omar Ali Hassan Karim Wei Jun Hiroshi Kenji Raj Arjun Luis Carlos Jorge Pedro Miguel "
    "Jean Pierre Louis Hans Klaus Lars Erik Jan Piotr Tomas Mateo Diego Kofi Kwame Samuel"
).split()
LAST = (
    "Smith Johnson Brown Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Taylor Moore Jackson Martin Lee Thompson White Harris Clark Lewis Walker Hall Young "
    "Ivanov Petrov Sokolov Volkov Kuznetsov Popov Novak Kowalski Nowak Horvat Kovac Dvorak "
    "Schmidt Schneider Fischer Weber Becker Wagner Hoffmann Dubois Moreau Laurent Lefebvre Rossi "
    "Russo Ferrari Esposito Bianchi Romano Silva Santos Oliveira Pereira Costa Almeida Tanaka "
    "Suzuki Takahashi Watanabe Yamamoto Kim Park Choi Chen Wang Zhang Liu Huang Zhao Singh Patel "
    "Sharma Gupta Khan Ahmed Hussain Okafor Mensah Diallo Traore Haddad Nasser Cohen Levi Friedman"
).split()
FAMOUS = [
    KnownEntity("Xi Jinping", "PERSON", ("Xi", "President Xi", "Chinese leader Xi")),
    KnownEntity("Vladimir Putin", "PERSON", ("Putin", "Путин")),
    KnownEntity("Volodymyr Zelensky", "PERSON", ("Zelensky", "Zelenskyy", "Zelenskiy")),
    KnownEntity("Joe Biden", "PERSON", ("Biden", "President Biden")),
    KnownEntity("Donald Trump", "PERSON", ("Trump",)),
    KnownEntity("Emmanuel Macron", "PERSON", ("Macron",)),
    KnownEntity("Olaf Scholz", "PERSON", ("Scholz",)),
    KnownEntity("Narendra Modi", "PERSON", ("Modi",)),
    KnownEntity("Recep Tayyip Erdoğan", "PERSON", ("Erdogan", "Erdoğan")),
    KnownEntity("Benjamin Netanyahu", "PERSON", ("Netanyahu",)),
    KnownEntity("Ursula von der Leyen", "PERSON", ("von der Leyen",)),
    KnownEntity("António Guterres", "PERSON", ("Guterres",)),
    KnownEntity("Luiz Inácio Lula da Silva", "PERSON", ("Lula",)),
    KnownEntity("Kim Jong Un", "PERSON", ("Kim Jong-un",)),
    KnownEntity("North Atlantic Treaty Organization", "ORG", ("NATO", "OTAN")),
    KnownEntity("European Union", "ORG", ("EU",)),
    KnownEntity("United Nations", "ORG", ("UN",)),
    KnownEntity("Gazprom", "ORG", ()),
    KnownEntity("International Monetary Fund", "ORG", ("IMF",)),
    KnownEntity("United States", "GPE", ("US", "USA", "America")),
    KnownEntity("United Kingdom", "GPE", ("UK", "Britain")),
]
ORGS = (
    "Gazprom;Rosneft;Shell;BP;TotalEnergies;Chevron;ExxonMobil;Apple;Microsoft;Google;Amazon;Meta;"
    "Nvidia;Samsung;Huawei;TSMC;Tesla;Volkswagen;Toyota;Siemens;Airbus;Boeing;Pfizer;Moderna;"
    "BioNTech;Reuters;World Bank;World Health Organization;Red Cross;Amnesty International;"
    "Human Rights Watch;Federal Reserve;European Central Bank;Bank of England;Hamas;Hezbollah;"
    "Wagner Group;OPEC;G7;G20;African Union;ASEAN;Interpol;Europol;FIFA;UEFA;Olympic Committee"
).split(";")
STEMS = "North Baltic Atlas Meridian Harbor Summit Pioneer Crescent Silver Granite Aurora Delta Horizon Vertex Nova".split()
SUFFIXES = ["Energy", "Shipping", "Holdings", "Bank", "Mining", "Pharma", "Airlines", "Telecom", "Logistics", "Capital"]
PLACES = (
    "Ukraine;Russia;China;Taiwan;United States;France;Germany;Italy;Spain;Poland;Turkey;Iran;Israel;"
    "Gaza;Lebanon;Syria;Iraq;Saudi Arabia;Egypt;Jordan;India;Pakistan;Afghanistan;Japan;South Korea;"
    "North Korea;Brazil;Argentina;Mexico;Canada;Nigeria;Kenya;Ethiopia;Sudan;South Africa;Australia;"
    "Indonesia;Philippines;Vietnam;Thailand;Kyiv;Moscow;Beijing;Washington;Paris;Berlin;London;"
    "Brussels;Geneva;Istanbul;Tehran;Jerusalem;Cairo;New Delhi;Tokyo;Seoul;São Paulo;Mexico City;"
    "Lagos;Nairobi;Kharkiv;Odesa;Donetsk;Crimea;Black Sea;Red Sea;Baltic Sea;South China Sea;Arctic;"
    "Sahel;Balkans;Caucasus;Kashmir;Hong Kong;Shanghai;Zürich;Kraków;Reykjavík;Bogotá"
).split(";")
LOCS = {"Black Sea", "Red Sea", "Baltic Sea", "South China Sea", "Arctic", "Sahel", "Balkans", "Caucasus", "Crimea"}
TOPICS = (
    "peace talks;ceasefire;sanctions;election;inflation;interest rates;recession;earthquake;wildfire;"
    "floods;drought;heatwave;hurricane;merger;acquisition;data breach;ransomware;cyberattack;"
    "protests;strike;coup;refugees;humanitarian aid;arms deal;missile;drone strike;nuclear;"
    "oil prices;gas pipeline;trade war;tariffs;semiconductors;artificial intelligence;climate summit;"
    "vaccine;outbreak;corruption;indictment;trial;extradition;espionage;summit;state visit;"
    "budget;debt;bond yields;stock market;layoffs;bankruptcy;supply chain;shipping;grain deal"
).split(";")
PREFIXES = ["negotiat*", "sanction*", "elect*", "cyber*", "refugee*", "protest*", "nuclear*", "invest*", "tariff*", "militar*"]
SPORT = ["sport", "football", "tennis", "Olympics", "cricket"]
FILLER = (
    "officials said on Monday that the government would review the plan after weeks of "
    "talks while analysts warned of further risks to the region and markets reacted calmly "
    "as ministers met in the capital to discuss next steps according to people familiar "
    "with the matter who declined to be named because the discussions were private"
).split()
SITES = ["bbc.co.uk", "reuters.com", "apnews.com", "theguardian.com", "aljazeera.com", "dw.com", "lemonde.fr"]


def zipf(rng: random.Random, items: Sequence[str], skew: float = 0.9) -> str:
    """Pick with a popularity skew: the first items are the most talked about."""
    weights = [1 / (rank + 1) ** skew for rank in range(len(items))]
    return rng.choices(items, weights)[0]


class World:
    """The vocabulary shared by the rules and the documents."""

    def __init__(self, rng: random.Random):
        people = {f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(3000)}
        self.people = [e.name for e in FAMOUS if e.type == "PERSON"] + sorted(people)
        rng.shuffle(self.people[14:])
        invented = {f"{rng.choice(STEMS)} {rng.choice(SUFFIXES)}" for _ in range(150)}
        self.orgs = ORGS + sorted(invented)
        self.places = PLACES
        self.lexicon = Lexicon.from_entities(FAMOUS)

    def surface(self, rng: random.Random, name: str) -> str:
        """How an item writes a name: in full, or by an alias or the surname."""
        entity = self.lexicon.canonical_of(name)
        if entity and rng.random() < 0.5:
            return rng.choice(entity.names)
        if " " in name and rng.random() < 0.4 and name in self.people:
            return name.split()[-1]
        return name


def q(name: str) -> str:
    """A name as a query term: quoted when it has several words."""
    return f'"{name}"' if " " in name else name


def make_rule(rng: random.Random, world: World) -> str:
    person = zipf(rng, world.people)
    last = person.split()[-1]
    org = zipf(rng, world.orgs)
    place = zipf(rng, world.places)
    topic = zipf(rng, TOPICS)
    roll = rng.random()
    if roll < 0.18:
        return q(person)
    if roll < 0.28:
        return f"person:{q(person if rng.random() < 0.5 else last)}"
    if roll < 0.36:
        return rng.choice([q(org), f"org:{q(org)}"])
    if roll < 0.50:
        alternatives = " OR ".join(q(zipf(rng, TOPICS)) for _ in range(rng.randint(1, 3)))
        extra = f" OR {rng.choice(PREFIXES)}" if rng.random() < 0.3 else ""
        scope = "place:" if rng.random() < 0.6 else ""
        return f"{scope}{q(place)} AND ({alternatives}{extra})"
    if roll < 0.60:
        return f"{q(person)} AND {q(topic)}"
    if roll < 0.66:
        return f"{q(person)} AND {q(zipf(rng, world.people))}"
    if roll < 0.71:
        return f"{q(last)} NEAR/10 {q(rng.choice([org, place, topic]))}"
    if roll < 0.79:
        return f"({q(org)} OR {q(zipf(rng, world.orgs))}) AND NOT ({' OR '.join(rng.sample(SPORT, 2))})"
    if roll < 0.84:
        return f"title:({q(person)} OR {q(place)})"
    if roll < 0.87:
        return f"site:{rng.choice(SITES)} AND {q(place)}"
    if roll < 0.90:
        return f"{q(topic)} AND {rng.choice(PREFIXES)} -{rng.choice(SPORT)}"
    if roll < 0.93:
        return f'person:{q(last)} AND org:{q(org)}'
    if roll < 0.96:
        return f"{q(place)} {q(topic)} -opinion"
    if roll < 0.987:
        return f"{q(person)} OR {q(zipf(rng, world.people))}"
    if roll < 0.997:
        return rng.choice(["/covid-?19/", "/(ransom|mal)ware/", "/[a-z]+gate/", "/zelensk(y|yy|iy)/", "/g[0-9]+/"])
    # A few firehose rules: everything but sport.
    return rng.choice(["NOT (sport OR football OR tennis)", "-opinion -sport", "NOT tag:sport"])


class DocumentBuilder:
    """Builds title and body text while recording where each entity was written."""

    def __init__(self) -> None:
        self.parts: dict[str, list[str]] = {"title": [], "body": []}
        self.lengths = {"title": 0, "body": 0}
        self.mentions: list[Mention] = []

    def add(self, field: str, text: str, canonical: str | None = None, label: str = "") -> None:
        if canonical is not None:
            start = self.lengths[field]
            self.mentions.append(Mention(text, canonical, label, field, start, start + len(text)))
        self.parts[field].append(text)
        self.lengths[field] += len(text)

    def text(self, field: str) -> str:
        return "".join(self.parts[field])


def make_document(rng: random.Random, world: World) -> Document:
    people = [zipf(rng, world.people) for _ in range(rng.randint(1, 4))]
    orgs = [zipf(rng, world.orgs) for _ in range(rng.randint(0, 3))]
    places = [zipf(rng, world.places) for _ in range(rng.randint(1, 3))]
    topics = [zipf(rng, TOPICS) for _ in range(rng.randint(1, 3))]
    entities = (
        [(p, "PERSON") for p in people]
        + [(o, "ORG") for o in orgs]
        + [(p, "LOC" if p in LOCS else "GPE") for p in places]
    )
    builder = DocumentBuilder()

    def entity(field: str, name: str, label: str) -> None:
        surface = world.surface(rng, name)
        known = world.lexicon.canonical_of(name)
        builder.add(field, surface, known.name if known else name, label)

    entity("title", people[0], "PERSON")
    builder.add("title", rng.choice([" says ", " warns over ", " meets leaders on ", " faces questions on "]))
    builder.add("title", topics[0])
    builder.add("title", " in ")
    entity("title", places[0], "LOC" if places[0] in LOCS else "GPE")

    for i in range(rng.randint(8, 16)):
        if i:
            builder.add("body", " ")
        words = rng.sample(FILLER, rng.randint(8, 16))
        cut = rng.randint(1, len(words) - 1)
        builder.add("body", " ".join(words[:cut]).capitalize() + " ")
        name, label = rng.choice(entities)
        entity("body", name, label)
        builder.add("body", " " + " ".join(words[cut:]) + " over " + rng.choice(topics))
        if rng.random() < 0.1:
            builder.add("body", " and " + rng.choice(SPORT + ["opinion", "Covid-19", "malware"]))
        builder.add("body", ".")
    return Document(
        title=builder.text("title"),
        body=builder.text("body"),
        author=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        feed=rng.choice(["wire", "bbc-world", "guardian-world", "aljazeera"]),
        tags=tuple(rng.sample(["World", "Europe", "Asia", "Business", "Politics", "sport"], rng.randint(0, 2))),
        link=f"https://www.{rng.choice(SITES)}/news/{rng.randint(1, 10**6)}",
        mentions=tuple(builder.mentions),
    )


def per_item_us(match: Callable[[Document], object], docs: Sequence[Document], repeat: int) -> float:
    """Microseconds per item, best of ``repeat`` passes (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for doc in docs:
            match(doc)
        best = min(best, time.perf_counter() - started)
    return best / len(docs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="passes per measurement; the best counts")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    world = World(rng)
    queries = [make_rule(rng, world) for _ in range(10_000)]
    docs = [make_document(rng, world) for _ in range(args.docs)]
    words_per_doc = statistics.mean(len((d.title + " " + d.body).split()) for d in docs)
    mentions_per_doc = statistics.mean(len(d.mentions) for d in docs)
    print(f"{len(docs)} items, {words_per_doc:.0f} words and {mentions_per_doc:.1f} mentions each")
    print(
        f"{'rules':>6} {'unindexed':>9} {'candidates':>10} {'matches':>8} "
        f"{'index us/item':>14} {'naive us/item':>14} {'speed-up':>8}"
    )

    index_us: dict[int, float] = {}
    for count in (100, 1_000, 10_000):
        rules = [compile_rule(f"rule-{i}", query, world.lexicon) for i, query in enumerate(queries[:count])]
        index = RuleIndex(rules, world.lexicon)
        naive_docs = docs if count < 10_000 else docs[:200]  # naive at 10k is slow; a sample suffices
        for doc in naive_docs[:50]:  # warm caches, and check the index loses nothing
            assert index.match(doc) == index.match_naive(doc)
        index_us[count] = per_item_us(index.match, docs, args.repeat)
        naive = per_item_us(index.match_naive, naive_docs, args.repeat)
        candidates = statistics.mean(len(index.candidates(d)) for d in docs[:200])
        matches = statistics.mean(len(index.match(d)) for d in docs[:200])
        print(
            f"{count:>6} {len(index.unindexed):>9} {candidates:>10.1f} {matches:>8.1f} "
            f"{index_us[count]:>14.0f} {naive:>14.0f} {naive / index_us[count]:>7.1f}x"
        )
    print(f"index cost ratio 10k/100 rules: {index_us[10_000] / index_us[100]:.1f}")


if __name__ == "__main__":
    main()
