"""A reproducible corpus of realistic news items for benchmarks, made offline.

``news_corpus(n, seed)`` returns ``n`` (title, body) pairs: wire-style stories built from a bank
of news sentences, with people introduced by role and full name and later called by surname,
organisations, countries, cities, events, laws, products, dates, sums and percentages. Bodies
have 60 to 250 words; about half the titles are in Title Case, as many feeds write them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

MIN_WORDS = 60
MAX_WORDS = 250


@dataclass(frozen=True)
class _Person:
    first: str
    last: str
    role: str
    country: str | None = None  # a leader's own country; officials serve the story's country
    surname_first: bool = False

    @property
    def full(self) -> str:
        return f"{self.last} {self.first}" if self.surname_first else f"{self.first} {self.last}"


_COUNTRIES = {
    # country: (adjective, capital, another city)
    "Ukraine": ("Ukrainian", "Kyiv", "Kharkiv"),
    "Russia": ("Russian", "Moscow", "St Petersburg"),
    "China": ("Chinese", "Beijing", "Shanghai"),
    "the United States": ("American", "Washington", "New York"),
    "France": ("French", "Paris", "Marseille"),
    "Germany": ("German", "Berlin", "Munich"),
    "Britain": ("British", "London", "Manchester"),
    "Japan": ("Japanese", "Tokyo", "Osaka"),
    "India": ("Indian", "New Delhi", "Mumbai"),
    "Brazil": ("Brazilian", "Brasilia", "Sao Paulo"),
    "Turkey": ("Turkish", "Ankara", "Istanbul"),
    "Israel": ("Israeli", "Jerusalem", "Tel Aviv"),
    "Iran": ("Iranian", "Tehran", "Isfahan"),
    "Egypt": ("Egyptian", "Cairo", "Alexandria"),
    "Nigeria": ("Nigerian", "Abuja", "Lagos"),
    "South Africa": ("South African", "Pretoria", "Johannesburg"),
    "Mexico": ("Mexican", "Mexico City", "Monterrey"),
    "Canada": ("Canadian", "Ottawa", "Toronto"),
    "Poland": ("Polish", "Warsaw", "Krakow"),
    "Italy": ("Italian", "Rome", "Milan"),
    "Spain": ("Spanish", "Madrid", "Barcelona"),
    "Saudi Arabia": ("Saudi", "Riyadh", "Jeddah"),
    "Qatar": ("Qatari", "Doha", "Al Wakrah"),
    "South Korea": ("South Korean", "Seoul", "Busan"),
    "Australia": ("Australian", "Canberra", "Sydney"),
    "Indonesia": ("Indonesian", "Jakarta", "Surabaya"),
    "Argentina": ("Argentine", "Buenos Aires", "Cordoba"),
    "Kenya": ("Kenyan", "Nairobi", "Mombasa"),
    "Ethiopia": ("Ethiopian", "Addis Ababa", "Dire Dawa"),
    "Sudan": ("Sudanese", "Khartoum", "Port Sudan"),
    "Syria": ("Syrian", "Damascus", "Aleppo"),
    "Lebanon": ("Lebanese", "Beirut", "Tripoli"),
    "Vietnam": ("Vietnamese", "Hanoi", "Ho Chi Minh City"),
    "Colombia": ("Colombian", "Bogota", "Medellin"),
    "Sweden": ("Swedish", "Stockholm", "Gothenburg"),
}

_LEADERS = [
    _Person("Vladimir", "Putin", "President", "Russia"),
    _Person("Jinping", "Xi", "President", "China", surname_first=True),
    _Person("Volodymyr", "Zelensky", "President", "Ukraine"),
    _Person("Emmanuel", "Macron", "President", "France"),
    _Person("Olaf", "Scholz", "Chancellor", "Germany"),
    _Person("Keir", "Starmer", "Prime Minister", "Britain"),
    _Person("Narendra", "Modi", "Prime Minister", "India"),
    _Person("Recep Tayyip", "Erdogan", "President", "Turkey"),
    _Person("Giorgia", "Meloni", "Prime Minister", "Italy"),
    _Person("Pedro", "Sanchez", "Prime Minister", "Spain"),
    _Person("Benjamin", "Netanyahu", "Prime Minister", "Israel"),
    _Person("Cyril", "Ramaphosa", "President", "South Africa"),
    _Person("Justin", "Trudeau", "Prime Minister", "Canada"),
    _Person("Claudia", "Sheinbaum", "President", "Mexico"),
    _Person("Donald", "Trump", "President", "the United States"),
    _Person("Joe", "Biden", "President", "the United States"),
    _Person("Javier", "Milei", "President", "Argentina"),
    _Person("Donald", "Tusk", "Prime Minister", "Poland"),
    _Person("Antonio", "Guterres", "UN Secretary-General"),
    _Person("Ursula", "von der Leyen", "European Commission President"),
    _Person("Mark", "Rutte", "NATO Secretary General"),
    _Person("William", "Ruto", "President", "Kenya"),
    _Person("Anthony", "Albanese", "Prime Minister", "Australia"),
]

_FIRST_NAMES = [
    "Maria", "Thomas", "Aiko", "Samuel", "Elena", "David", "Priya", "Lars", "Fatima", "James",
    "Wei", "Ana", "Mikhail", "Grace", "Jean-Luc", "Olena", "Hassan", "Sofia", "Kenji", "Amara",
    "Carlos", "Ingrid", "Rahul", "Leila", "Pavel", "Nadia", "Tomasz", "Chloe", "Emeka", "Yusuf",
    "Hannah", "Diego", "Mei", "Oleksandr", "Claire", "Sipho", "Lucia", "Ahmed", "Julia", "Arjun",
]
_LAST_NAMES = [
    "Delgado", "Berger", "Tanaka", "Okafor", "Petrova", "Cohen", "Raman", "Nilsson", "Haddad",
    "O'Connor", "Chen", "Souza", "Sokolov", "Mensah", "Moreau", "Kovalenko", "Rahimi", "Romano",
    "Watanabe", "Diallo", "Herrera", "Lindqvist", "Kapoor", "Nasser", "Novak", "Bauer", "Wojcik",
    "Lefebvre", "Adeyemi", "Demir", "Fischer", "Alvarez", "Zhang", "Shevchenko", "Dubois",
    "Nkosi", "Ferreira", "Khalil", "Schmidt", "Iyer",
]
_OFFICIAL_ROLES = [
    "Foreign Minister", "Finance Minister", "Defence Minister", "Health Minister", "Energy Minister",
    "Trade Minister", "Interior Minister", "government spokesperson", "opposition leader",
    "central bank governor", "deputy prime minister", "senior diplomat",
]
_EXPERT_ROLES = [
    "chief economist at {org}", "an analyst at {org}", "a researcher at {university}",
    "a professor of international relations at {university}", "a spokesperson for {org}",
    "chief executive of {company}", "head of policy at {org}", "a senior fellow at {think_tank}",
]

_ORGS = [
    "the United Nations", "NATO", "the European Union", "the International Monetary Fund",
    "the World Bank", "the World Health Organization", "the International Energy Agency",
    "OPEC", "the African Union", "the Red Cross", "Amnesty International", "Human Rights Watch",
    "the International Atomic Energy Agency", "the World Trade Organization", "the G7",
    "the Federal Reserve", "the European Central Bank", "the Bank of England", "Interpol",
]
_COMPANIES = [
    "Apple", "Microsoft", "Toyota", "Siemens", "Samsung Electronics", "Gazprom", "Tesla",
    "Boeing", "Airbus", "Pfizer", "BP", "Shell", "HSBC", "Goldman Sachs", "Volkswagen",
    "Huawei", "TSMC", "Nvidia", "Alibaba", "Saudi Aramco", "Nestle", "Unilever", "Maersk",
]
_NEWS_AGENCIES = ["Reuters", "the Associated Press", "Agence France-Presse", "Bloomberg", "the BBC"]
_UNIVERSITIES = [
    "Oxford University", "Harvard University", "the London School of Economics",
    "Sciences Po", "Peking University", "the University of Cape Town", "Stanford University",
]
_THINK_TANKS = ["Chatham House", "the Brookings Institution", "the Carnegie Endowment", "the Atlantic Council"]
_EVENTS = [
    "the G20 summit", "the COP29 climate conference", "the Munich Security Conference",
    "the World Economic Forum", "the UN General Assembly", "the Olympic Games", "the World Cup",
    "the NATO summit", "the BRICS summit",
]
_LAWS = [
    "the Inflation Reduction Act", "the Digital Services Act", "the Paris Agreement",
    "the Geneva Conventions", "the Chips and Science Act", "the AI Act", "the Nuclear Non-Proliferation Treaty",
]
_PRODUCTS = [
    "the iPhone", "the Model Y", "the Boeing 737 Max", "ChatGPT", "the Galaxy S24", "the F-35", "the Airbus A320",
]
_FACILITIES = [
    "the Zaporizhzhia nuclear power plant", "the Suez Canal", "Heathrow Airport", "the White House",
    "the Kremlin", "the Pentagon", "the Port of Rotterdam", "the Strait of Hormuz", "the Panama Canal",
]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December",
]
_TOPICS = [
    "grain exports", "gas prices", "sanctions", "the ceasefire", "peace talks", "tariffs",
    "interest rates", "refugees", "the election", "military aid", "climate finance",
    "chip exports", "border security", "the budget", "debt relief", "drone attacks",
]

# {P} the lead person (full name with role the first time, surname after), {Q} a second one.
_LEAD_SENTENCES = [
    "{P} said on {weekday} that {country} would not accept any agreement that left {topic} unresolved.",
    "{P} arrived in {city} on {weekday} for talks on {topic}, the first such visit since {month}.",
    "{P} warned that {country} could face new {topic} measures if negotiations with {org} failed.",
    "{P} held a phone call with {Q} on {weekday}, and the two discussed {topic} and regional security.",
    "{P} announced a {amount} package on {weekday} aimed at easing pressure from {topic}.",
    "{P} met {Q} in {city} on the sidelines of {event}, officials said.",
    "Speaking to reporters in {city}, {P} said talks on {topic} had made progress but were not over.",
]
_BODY_SENTENCES = [
    "{Ps} told reporters that the government was ready to work with {org} on {topic}.",
    "{Ps} said the talks with {Qs} had been frank and constructive.",
    "{Qs} did not respond to a request for comment from {agency}.",
    "A spokesperson for {org} said the organisation was monitoring the situation closely.",
    "The {adjective} foreign ministry said in a statement that it rejected the accusations.",
    "Officials in {city} said {number} people had been evacuated from the area on {weekday}.",
    "{Ps} has faced mounting criticism at home over {topic}, with polls showing support falling to {percent}.",
    "Shares in {company} fell {percent} in early trading after the announcement.",
    "{company} said it expected the measures to cost about {amount} over the next two years.",
    "The dispute has overshadowed preparations for {event}, which opens in {city} in {month}.",
    "{expert}, said the decision reflected growing concern in {country} about {topic}.",
    "\"This is a serious moment for {country},\" said {expert}. \"Nobody wants an escalation.\"",
    "According to {agency}, the proposal would also extend {law} for another five years.",
    "The {adjective} government has repeatedly called on {org} to intervene.",
    "{Ps} is due to travel to {city} next week for {event}.",
    "Inflation in {country} rose to {percent} in {month}, the highest level in more than a decade.",
    "{org} estimates that {number} people have been displaced since {month}.",
    "Satellite images reviewed by {agency} showed damage near {facility}.",
    "The move follows a similar decision by {country} in {month}.",
    "Critics, including {expert}, say the plan does little to address {topic}.",
    "{company} and {company2} are among the firms most exposed to the new rules on {topic}.",
    "Lawmakers in {city} are expected to vote on the measure on {weekday}.",
    "{Qs} later said on social media that {country} stood ready to help.",
    "The {adjective} embassy in {city} declined to comment.",
    "Demand for {product} has slowed this year as consumers cut spending.",
    "Traffic through {facility} has fallen by {percent} since the start of the year.",
    "{Ps} and {Qs} are expected to meet again at {event}.",
    "The central bank left its key rate unchanged at {percent} on {weekday}.",
    "Protesters gathered outside {facility} on {weekday} evening, witnesses told {agency}.",
    "The agreement must still be approved by parliament in {city}.",
]
_TITLES = [
    "{Ls} warns {country} over {topic}",
    "{Ls} and {Ms} hold talks as {topic} dispute deepens",
    "{country} rejects {org_short} call on {topic}",
    "{company} shares slide as {topic} fears grow",
    "{Ls} heads to {city} for {event}",
    "{adjective} leader vows action on {topic}",
    "{Ls} says {topic} deal is close",
    "{org_short} sounds alarm over {topic} in {country}",
    "Talks in {city} end without deal on {topic}",
    "{Ls} meets {Ms} amid row over {topic}",
]


def _person(rng: random.Random) -> _Person:
    if rng.random() < 0.55:
        return rng.choice(_LEADERS)
    return _Person(rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES), rng.choice(_OFFICIAL_ROLES))


def _introduce(person: _Person, country: str, rng: random.Random) -> str:
    """The first mention: role and full name, in one of the two usual orders."""
    country = person.country or country
    if person.role[0].isupper() and rng.random() < 0.6:
        adjective = f"{_COUNTRIES[country][0]} " if person.role[:2] not in ("UN", "Eu", "NA") else ""
        return f"{adjective}{person.role} {person.full}"
    return f"{person.full}, the {person.role},"


def _short_org(org: str) -> str:
    return org[4:] if org.startswith("the ") else org


def _title_case(text: str) -> str:
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


def _fill(template: str, slots: dict[str, str], rng: random.Random) -> str:
    values = dict(slots)
    values.update(
        weekday=rng.choice(_WEEKDAYS),
        month=rng.choice(_MONTHS),
        topic=rng.choice(_TOPICS),
        org=rng.choice(_ORGS),
        org_short=_short_org(rng.choice(_ORGS)),
        company=slots["company"],
        company2=rng.choice(_COMPANIES),
        agency=rng.choice(_NEWS_AGENCIES),
        event=rng.choice(_EVENTS),
        law=rng.choice(_LAWS),
        product=rng.choice(_PRODUCTS),
        facility=rng.choice(_FACILITIES),
        number=f"{rng.randint(2, 950):,}" if rng.random() < 0.5 else f"{rng.randint(2, 90)},{rng.randint(0, 999):03d}",
        percent=f"{rng.randint(1, 19)}.{rng.randint(0, 9)} percent",
        amount=f"${rng.randint(1, 90)}.{rng.randint(1, 9)} billion",
    )
    expert_person = _Person(rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES), "")
    values["expert"] = f"{expert_person.full}, " + rng.choice(_EXPERT_ROLES).format(
        org=rng.choice(_ORGS),
        university=rng.choice(_UNIVERSITIES),
        company=rng.choice(_COMPANIES),
        think_tank=rng.choice(_THINK_TANKS),
    )
    text = template.format(**values)
    return text[0].upper() + text[1:]


def _story(rng: random.Random) -> tuple[str, str]:
    lead, second = _person(rng), _person(rng)
    while second.last == lead.last:
        second = _person(rng)
    country = lead.country or rng.choice(sorted(_COUNTRIES))
    other = second.country or rng.choice(sorted(set(_COUNTRIES) - {country}))
    adjective, capital, city = _COUNTRIES[country]
    slots = {
        "country": country,
        "adjective": adjective,
        "city": rng.choice([capital, capital, city, _COUNTRIES[other][1]]),
        "company": rng.choice(_COMPANIES),
        "P": _introduce(lead, country, rng),
        "Q": _introduce(second, other, rng),
        "Ps": lead.last,
        "Qs": second.last,
        "Ls": lead.last,
        "Ms": second.last,
    }
    title = _fill(rng.choice(_TITLES), slots, rng)
    if rng.random() < 0.5:
        title = _title_case(title)

    target = rng.randint(MIN_WORDS, MAX_WORDS)
    sentences = [_fill(rng.choice(_LEAD_SENTENCES), slots, rng)]
    words = len(sentences[0].split())
    for template in rng.sample(_BODY_SENTENCES, len(_BODY_SENTENCES)):
        sentence = _fill(template, slots, rng)
        if words >= target or words + len(sentence.split()) > MAX_WORDS:
            break
        sentences.append(sentence)
        words += len(sentence.split())
    return title, _paragraphs(sentences, rng)


def _paragraphs(sentences: list[str], rng: random.Random) -> str:
    paragraphs, current = [], []
    for sentence in sentences:
        current.append(sentence)
        if len(current) >= rng.randint(2, 3):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def news_corpus(n: int = 1000, seed: int = 20240611) -> list[tuple[str, str]]:
    """``n`` (title, body) news items; the same ``seed`` gives the same items."""
    rng = random.Random(seed)
    items: list[tuple[str, str]] = []
    while len(items) < n:
        title, body = _story(rng)
        if len(body.split()) >= MIN_WORDS:
            items.append((title, body))
    return items


if __name__ == "__main__":
    for title, body in news_corpus(3):
        print(title, "\n", body, "\n", sep="")


def rss_feed(
    name: str, stories: list[tuple[str, str]], *, offset: int = 0, spacing: timedelta = timedelta(minutes=1)
) -> bytes:
    """An RSS 2.0 document of ``stories`` (title, body) as a news site would serve it.

    Bodies become HTML paragraphs; items are ``spacing`` apart, newest first,
    and numbered from ``offset`` (guids and links stay unique across rounds).
    """
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    entries = "".join(
        f"<item><guid>{name}-{offset + n}</guid><title>{escape(title)}</title>"
        f"<link>https://{name}.example.org/news/{offset + n}</link>"
        f"<description>{escape('<p>' + body.replace(chr(10), '</p><p>') + '</p>')}</description>"
        f"<pubDate>{format_datetime(now - spacing * n)}</pubDate></item>"
        for n, (title, body) in enumerate(stories)
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{name}</title>"
        f"<link>https://{name}.example.org/</link><description>news</description>{entries}</channel></rss>"
    ).encode()
