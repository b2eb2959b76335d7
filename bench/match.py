"""How long matching one item takes, with the rule index and without.

Generates 10,000 watch rules of the kinds a newsroom writes and 1,000 news-like
items, then prints microseconds per item for RuleIndex.match and
RuleIndex.match_naive at 100, 1,000 and 10,000 rules (the first N of the same
10,000), after checking on every item timed naively that the index returns
exactly what naive evaluation returns.

The world: about 6,000 people, 1,300 organisations, 280 places and 200 topics
(30 of these names are in the lexicon, with their aliases), and a general
vocabulary of about 700 words. Items are wire-style stories of about 180 words
(about 100 distinct ones) about a few main people, organisations and places,
with a dozen entity mentions; news is concentrated, so items pick names with a
strong popularity skew (Zipf, s=0.9). Rules spread over the whole vocabulary
with a milder skew (s=0.6): many users watch the famous names, most rules watch
someone or something particular. So a typical rule matches a small fraction of
items (most match none of the 1,000) and a few broad ones match most; the last
line of output says how selective the rules were.

The rule mix: 18% a person's name; 10% ``person:`` (full name or surname); 8%
an organisation (bare or ``org:``); 14% a place AND one to three topics (or a
prefix such as ``negotiat*``), often as ``place:``; 10% person AND topic; 6%
person AND person; 5% surname NEAR/10 organisation, place or topic; 8% two
organisations AND NOT sport words; 5% ``title:`` person or place; 3% ``site:``
AND place; 3% topic AND prefix, minus a sport word; 3% ``person:`` AND
``org:``; 3% place topic -opinion; 3.7% person OR person; 1% regexes; 0.3%
pure negations (``NOT (sport OR football)``), which the index cannot file.

Each figure is the best of --repeat passes; naive matching at 10,000 rules
runs on 200 items only.

    .venv/bin/python bench/match.py [--docs 1000] [--seed 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import accumulate

from monitor.items import KnownEntity, Mention
from monitor.rules.document import Document, Lexicon
from monitor.rules.evaluate import compile_rule
from monitor.rules.index import RuleIndex

FIRST = (
    "Anna Maria Olga Elena Sofia Laura Ines Marta Julia Clara Nadia Amira Leila Fatima Mei Yuki Priya Aisha "
    "Grace Chloe Emma Hannah Ingrid Katya Lucia Noor Rosa Sara Tamar Zainab Agnieszka Beatriz Camila Dana "
    "Eva Farah Gabriela Hana Irina Jana Karin Lena Mariam Natalia Oksana Paula Rania Sakura Tanya Ursula "
    "Valentina Wanjiru Ximena Yasmin Zofia Adaeze Bianca Daria Esther Freya Giulia Helga Isabel Jia Keiko "
    "Lina Mona Nia Olivia Pilar Qiu Renata Sunita Thandiwe Uma Vera Wen Yara Zara Alicia Carmen Deepa Elif "
    "James John Robert Michael David Daniel Thomas Peter Paul Mark Ivan Sergei Dmitri Andrei Pavel Ahmed Omar "
    "Ali Hassan Karim Wei Jun Hiroshi Kenji Raj Arjun Luis Carlos Jorge Pedro Miguel Jean Pierre Louis Hans "
    "Klaus Lars Erik Jan Piotr Tomas Mateo Diego Kofi Kwame Samuel Abdul Bongani Chinedu Dawit Emeka Farid "
    "Gustavo Haruto Ibrahim Joao Kaveh Lukas Mehmet Nikolai Oleksandr Rafael Stefan Tariq Viktor Wojciech "
    "Yusuf Zoran Aleksandr Bruno Cheng Dong Enrique Felipe Goran Henrik Ilya Jakub Kamal Lorenzo Mustafa "
    "Nasser Oscar Pablo Rashid Sandeep Takeshi Uwe Vikram Walid Xavier Yannick Zhou Anders Bilal Cyril "
    "Dario Emil Fabian Gintaras Hamid Ismail Jonas Kemal Levan Matteo Nuno Orhan Patrice Ruben Salim Tiago"
).split()
LAST = (
    "Smith Johnson Brown Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson Anderson "
    "Taylor Moore Jackson Martin Lee Thompson White Harris Clark Lewis Walker Hall Young Ivanov Petrov Sokolov "
    "Volkov Kuznetsov Popov Novak Kowalski Nowak Horvat Kovac Dvorak Schmidt Schneider Fischer Weber Becker "
    "Wagner Hoffmann Dubois Moreau Laurent Lefebvre Rossi Russo Ferrari Esposito Bianchi Romano Silva Santos "
    "Oliveira Pereira Costa Almeida Tanaka Suzuki Takahashi Watanabe Yamamoto Kim Park Choi Chen Wang Zhang "
    "Liu Huang Zhao Singh Patel Sharma Gupta Khan Hussain Okafor Mensah Diallo Traore Haddad Cohen Levi "
    "Friedman Abadi Bakr Castillo Delgado Eriksson Fonseca Gallagher Horvath Ibrahimovic Jankowski Kaplan "
    "Lindqvist Mahmoud Nakamura Obi Pacheco Quintero Ramos Sato Tkachenko Uribe Varga Wiśniewski Xu Yilmaz "
    "Zielinski Adeyemi Barros Cardoso Dimitrov Estrada Farouk Georgiou Hakimi Ishikawa Jovanovic Kariuki "
    "Lombardi Mendoza Nyambura Ortega Papadopoulos Qureshi Rahman Sousa Toure Urquhart Vasquez Wolff Yadav "
    "Zapata Acheampong Brennan Chowdhury Dlamini Ekwueme Fitzgerald Grigoryan Hashemi Iyer Jensen Kowalczyk "
    "Lindgren Mwangi Nieminen O'Brien Petrenko Rasmussen Szabo Tran Umarov Vlahos Weiss Yamada Zhukov "
    "Abubakar Bergstrom Celik Demir Eze Ferreira Gomes Hansen Ito Jimenez Kaya Lund Moretti Nguyen Olsen "
    "Pham Quispe Reyes Sanchez Torres Ueda Vargas Wójcik Yoon Zaman Aziz Bose Chaudhry Dogan Engel Fujita "
    "Gruber Halvorsen Iqbal Jaramillo Kruger Lambert Marin Novotny Osei Pavlov Ruiz Svensson Tamura Ulloa "
    "Vidal Wu Yang Zaragoza Aydin Bauer Correa Dinh Eklund Franco Guerrero Holm Ikeda Jafari Keller Larsen "
    "Meyer Nilsson Ozturk Perez Richter Stone Tiwari Uchenna Villa Walsh Yusuf Zubair"
).split()
# Invented surnames, so that 6,000 people do not share a few hundred names.
SYLLABLES = (
    "Abr Adel Bal Bar Bel Bor Cal Cor Dal Dan Dor Ek Fal Fer Gal Gor Hal Har Ist Jar Kal Kel Kor Lar Lor "
    "Mal Mar Mir Nor Ost Pal Pel Rad Ros Sal Sar Tal Tor Ul Val Var Ves Wal Yar Zel Zor Brav Krem Stan Vol"
).split()
ENDINGS = (
    "enko ova ski sson berg ani ez ardo elli ov ic ian idis oglu sen strom ura ake anu escu uk ek ak is "
    "ado ero inho otti ov ev in ton ford ley well by ham ridge wood stein mann er ier eau"
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
    KnownEntity("Keir Starmer", "PERSON", ("Starmer",)),
    KnownEntity("Giorgia Meloni", "PERSON", ("Meloni",)),
    KnownEntity("Javier Milei", "PERSON", ("Milei",)),
    KnownEntity("Cyril Ramaphosa", "PERSON", ("Ramaphosa",)),
    KnownEntity("Mohammed bin Salman", "PERSON", ("MBS", "Crown Prince Mohammed")),
    KnownEntity("North Atlantic Treaty Organization", "ORG", ("NATO", "OTAN")),
    KnownEntity("European Union", "ORG", ("EU",)),
    KnownEntity("United Nations", "ORG", ("UN",)),
    KnownEntity("International Monetary Fund", "ORG", ("IMF",)),
    KnownEntity("Organization of the Petroleum Exporting Countries", "ORG", ("OPEC",)),
    KnownEntity("Federal Reserve", "ORG", ("the Fed",)),
    KnownEntity("United States", "GPE", ("USA", "America")),
    KnownEntity("United Kingdom", "GPE", ("UK", "Britain")),
    KnownEntity("Democratic Republic of the Congo", "GPE", ("DRC", "DR Congo")),
    KnownEntity("Côte d'Ivoire", "GPE", ("Ivory Coast",)),
    KnownEntity("Kyiv", "GPE", ("Kiev",)),
]
ORGS = (
    "Gazprom;Rosneft;Shell;BP;TotalEnergies;Chevron;ExxonMobil;Saudi Aramco;Equinor;Eni;Apple;Microsoft;"
    "Google;Amazon;Meta;Nvidia;Samsung;Huawei;TSMC;Tesla;Volkswagen;Toyota;Stellantis;BYD;Siemens;Airbus;"
    "Boeing;Lockheed Martin;Rheinmetall;BAE Systems;Pfizer;Moderna;BioNTech;Novartis;Roche;AstraZeneca;"
    "Novo Nordisk;Bayer;Nestlé;Unilever;Maersk;Glencore;Rio Tinto;BHP;ArcelorMittal;HSBC;Barclays;"
    "Deutsche Bank;UBS;Credit Suisse;JPMorgan;Goldman Sachs;BlackRock;Alibaba;Tencent;ByteDance;TikTok;"
    "OpenAI;Anthropic;Intel;AMD;ASML;Arm;Sony;Nintendo;Netflix;Disney;Spotify;Uber;Airbnb;Visa;Mastercard;"
    "Reuters;Associated Press;World Bank;World Health Organization;Red Cross;Amnesty International;"
    "Human Rights Watch;Médecins Sans Frontières;Greenpeace;European Central Bank;Bank of England;"
    "Bank of Japan;People's Bank of China;Hamas;Hezbollah;Houthis;Taliban;Wagner Group;G7;G20;BRICS;"
    "African Union;ASEAN;Arab League;Interpol;Europol;FIFA;UEFA;International Olympic Committee;"
    "International Criminal Court;International Atomic Energy Agency;World Trade Organization;Pentagon;"
    "Kremlin;European Commission;European Parliament;Bundestag;Supreme Court;Labour Party;Conservative Party;"
    "Republican Party;Democratic Party;SpaceX;Ryanair;Lufthansa;Emirates;Qatar Airways;Aeroflot;Vale;"
    "Petrobras;Tata Group;Reliance Industries;Infosys;Adani Group;Sinopec;CATL;Xiaomi;Foxconn;Hyundai"
).split(";")
STEMS = (
    "North Baltic Atlas Meridian Harbor Summit Pioneer Crescent Silver Granite Aurora Delta Horizon Vertex "
    "Nova Apex Beacon Cobalt Dune Ember Falcon Glacier Helix Iris Juniper Keystone Lumen Mosaic Nimbus "
    "Orion Prairie Quartz Redwood Sierra Tidal Unity Vantage Willow Zenith Alder Boreal Cascade Drift "
    "Everest Fjord Golden Highland Indigo Jade Kestrel Lighthouse Maple Northstar Oakridge Polar Riverside "
    "Sapphire Terra"
).split()
SUFFIXES = (
    "Energy Shipping Holdings Bank Mining Pharma Airlines Telecom Logistics Capital Motors Foods Insurance "
    "Robotics Biotech Semiconductors Steel Media Power Water Chemicals Aerospace Ventures Partners"
).split()
PLACES = (
    "Ukraine;Russia;China;Taiwan;United States;France;Germany;Italy;Spain;Portugal;Poland;Turkey;Iran;Iraq;"
    "Israel;Gaza;West Bank;Lebanon;Syria;Jordan;Saudi Arabia;Yemen;Oman;Qatar;Kuwait;Bahrain;"
    "United Arab Emirates;Egypt;Libya;Tunisia;Algeria;Morocco;Sudan;South Sudan;Ethiopia;Eritrea;Somalia;"
    "Kenya;Uganda;Tanzania;Rwanda;Burundi;Democratic Republic of the Congo;Congo;Angola;Zambia;Zimbabwe;"
    "Mozambique;Malawi;Madagascar;South Africa;Namibia;Botswana;Nigeria;Ghana;Côte d'Ivoire;Senegal;Mali;"
    "Burkina Faso;Niger;Chad;Cameroon;Gabon;Guinea;Sierra Leone;Liberia;Mauritania;India;Pakistan;"
    "Afghanistan;Bangladesh;Sri Lanka;Nepal;Bhutan;Myanmar;Thailand;Vietnam;Cambodia;Laos;Malaysia;"
    "Singapore;Indonesia;Philippines;Japan;South Korea;North Korea;Mongolia;Kazakhstan;Uzbekistan;"
    "Kyrgyzstan;Tajikistan;Turkmenistan;Azerbaijan;Armenia;Georgia;Belarus;Moldova;Romania;Bulgaria;Greece;"
    "Cyprus;Serbia;Kosovo;Bosnia;Croatia;Slovenia;Hungary;Slovakia;Czech Republic;Austria;Switzerland;"
    "Belgium;Netherlands;Luxembourg;Denmark;Norway;Sweden;Finland;Estonia;Latvia;Lithuania;Iceland;Ireland;"
    "United Kingdom;Scotland;Wales;Canada;Mexico;Guatemala;Honduras;El Salvador;Nicaragua;Costa Rica;Panama;"
    "Cuba;Haiti;Dominican Republic;Jamaica;Colombia;Venezuela;Ecuador;Peru;Bolivia;Chile;Argentina;Uruguay;"
    "Paraguay;Brazil;Australia;New Zealand;Papua New Guinea;Fiji;Kyiv;Kharkiv;Odesa;Lviv;Donetsk;Mariupol;"
    "Zaporizhzhia;Crimea;Moscow;St Petersburg;Beijing;Shanghai;Shenzhen;Hong Kong;Taipei;Washington;"
    "New York;Los Angeles;Chicago;Houston;Miami;San Francisco;Paris;Marseille;Berlin;Munich;Frankfurt;"
    "Hamburg;London;Manchester;Edinburgh;Brussels;Geneva;Zürich;Vienna;Rome;Milan;Madrid;Barcelona;Lisbon;"
    "Warsaw;Kraków;Prague;Budapest;Bucharest;Athens;Istanbul;Ankara;Tehran;Baghdad;Damascus;Beirut;"
    "Jerusalem;Tel Aviv;Amman;Riyadh;Dubai;Abu Dhabi;Doha;Cairo;Khartoum;Addis Ababa;Nairobi;Lagos;Abuja;"
    "Accra;Dakar;Johannesburg;Cape Town;Kinshasa;New Delhi;Mumbai;Kolkata;Bangalore;Karachi;Islamabad;"
    "Lahore;Kabul;Dhaka;Colombo;Bangkok;Hanoi;Jakarta;Manila;Kuala Lumpur;Tokyo;Osaka;Seoul;Pyongyang;"
    "Sydney;Melbourne;Toronto;Montreal;Vancouver;Ottawa;Mexico City;Bogotá;Caracas;Lima;Santiago;"
    "Buenos Aires;São Paulo;Rio de Janeiro;Brasília;Reykjavík;Black Sea;Red Sea;Baltic Sea;"
    "South China Sea;Mediterranean;Arctic;Antarctica;Sahel;Balkans;Caucasus;Kashmir;Darfur;Tigray;"
    "Xinjiang;Tibet;Amazon;Strait of Hormuz;Suez Canal;Panama Canal;Persian Gulf"
).split(";")
LOCS = {
    "Black Sea", "Red Sea", "Baltic Sea", "South China Sea", "Mediterranean", "Arctic", "Antarctica", "Sahel",
    "Balkans", "Caucasus", "Crimea", "Amazon", "Strait of Hormuz", "Suez Canal", "Panama Canal", "Persian Gulf",
}
TOPICS = (
    "peace talks;ceasefire;sanctions;election;inflation;interest rates;recession;earthquake;wildfire;floods;"
    "drought;heatwave;hurricane;typhoon;landslide;volcano;merger;acquisition;data breach;ransomware;"
    "cyberattack;protests;strike;coup;refugees;humanitarian aid;arms deal;missile;drone strike;airstrike;"
    "nuclear;oil prices;gas pipeline;trade war;tariffs;semiconductors;artificial intelligence;climate summit;"
    "vaccine;outbreak;pandemic;corruption;indictment;trial;extradition;espionage;summit;state visit;budget;"
    "debt;bond yields;stock market;layoffs;bankruptcy;supply chain;shipping;grain deal;minimum wage;pensions;"
    "housing crisis;rent;mortgage rates;unemployment;GDP;exports;imports;currency;central bank;stimulus;"
    "privatisation;nationalisation;antitrust;monopoly;fine;lawsuit;settlement;verdict;appeal;sentencing;"
    "parole;prison;police;shooting;stabbing;terror attack;hostages;kidnapping;piracy;smuggling;"
    "human trafficking;migration;asylum;border;deportation;visa;citizenship;referendum;impeachment;"
    "resignation;cabinet reshuffle;coalition;opposition;parliament;constitution;martial law;curfew;"
    "state of emergency;blackout;power grid;renewable energy;solar;wind farm;coal;emissions;carbon tax;"
    "deforestation;biodiversity;pollution;plastic;water shortage;famine;food prices;fertiliser;harvest;"
    "fishing;mining;lithium;rare earths;copper;gold;crypto;bitcoin;stablecoin;fintech;startup;IPO;"
    "venture capital;earnings;profit warning;dividend;share buyback;chip exports;export controls;"
    "space launch;satellite;rocket;moon mission;telescope;cancer research;gene therapy;obesity drug;"
    "mental health;hospital;doctors strike;nurses;teachers;universities;tuition;exam;scholarship;"
    "free speech;censorship;press freedom;journalist;disinformation;social media;deepfake;privacy;"
    "surveillance;facial recognition;data protection;election fraud;recount;polling;campaign;debate;"
    "inauguration;royal visit;funeral;anniversary;memorial;war crimes;genocide;tribunal;peacekeepers;"
    "troops;conscription;mobilisation;military aid;frontline;counteroffensive;shelling;evacuation;"
    "reconstruction;landmines;prisoner swap;diplomats;embassy;ambassador;expulsion;treaty;alliance;"
    "naval exercise;air defence"
).split(";")
PREFIXES = ["negotiat*", "sanction*", "elect*", "cyber*", "refugee*", "protest*", "nuclear*", "invest*", "tariff*", "militar*"]
SPORT = ["sport", "football", "tennis", "Olympics", "cricket"]
# The general vocabulary of wire copy, most frequent first (items draw from it
# with a Zipf skew, so "the" and "said" are everywhere and "audit" is rare).
COMMON = (
    "the of to and a in on for that said is with was by at as from has it have be will are its an not "
    "after who were had been which their this but more than over also would they new or about year two "
    "his he she her last one up when into officials government told people could first other week against "
    "all since some we out there percent its while can between three million us under before billion our "
    "time years most during minister president state country including month statement now only did "
    "because any since told spokesman added monday tuesday wednesday thursday friday saturday sunday "
    "national former public report group security police international market company told according "
    "military ministry rights foreign support workers plan city region talks leaders deal news war health "
    "prices economic political court law forces officials agency service power water oil gas bank trade "
    "policy party vote council water children women local central north south east west early late high "
    "low long short major small large second third four five six seven eight nine ten hundred thousand "
    "dozens several many few each every both such same another further own still even just already "
    "again back down off away around through across along until while where why how what whether may "
    "might must should shall need say says saying asked called made make making took take taking gave "
    "give given went go going came come coming saw see seen found find show shows showed expected "
    "expects announced announce reported confirmed denied warned warns urged agreed rejected approved "
    "signed launched opened closed raised cut increased fell rose dropped grew hit killed injured "
    "arrested charged accused sentenced released held met meets visited visit visits plans planned "
    "began begin continue continued remain remained remains left leave leaving join joined joins help "
    "helped keep kept set sets put turn turned move moved moves build built run running ran lead led "
    "leading follow followed following hold holding seek seeking sought face faces faced press pressure "
    "concern concerns fears fear risk risks crisis threat threats attack attacks fighting fight violence "
    "conflict troops soldiers civilians victims residents families citizens voters lawmakers ministers "
    "analysts experts investors traders consumers businesses companies firms industry sector markets "
    "economy growth jobs job wages costs cost price rate rates revenue sales profits profit losses loss "
    "shares stocks funds fund money budget debt tax taxes spending investment investments program "
    "programme project projects system services infrastructure energy electricity fuel food supplies "
    "supply demand production output exports imports goods data technology research study studies "
    "results result evidence figures numbers level levels record records total average percent quarter "
    "half part parts area areas zone border borders capital province district town towns village "
    "villages streets street building buildings homes home house houses hospital hospitals school "
    "schools university road roads bridge airport port ports station coast island islands river "
    "mountains weather rain storm storms fire fires heat cold winter summer spring autumn season "
    "morning evening night day days weeks months decade decades century history future past recent "
    "current latest final full free fair open public private official independent joint united "
    "federal regional global domestic foreign senior junior chief head director chairman spokeswoman "
    "spokesperson secretary general commander officer leader leaders members member committee board "
    "council union unions alliance coalition administration authorities authority regulator regulators "
    "inquiry investigation probe case cases charges trial judge judges lawyers lawyer prosecutors "
    "ruling decision decisions measures measure rules rule bill bills legislation reform reforms "
    "agreement agreements negotiations proposal proposals offer offers request demands demand response "
    "reaction criticism support opposition protest protests campaign campaigns election elections "
    "candidate candidates poll polls vote votes seats majority minority parliament congress senate "
    "cabinet office offices role position power rights freedom justice peace aid relief assistance "
    "emergency disaster damage losses deaths death dead wounded missing survivors rescue rescuers "
    "shelter camps displaced refugees migrants boats ship ships aircraft planes plane flights flight "
    "passengers crew vehicles cars trucks trains rail network networks internet phone phones online "
    "website platform platforms users accounts content video videos images pictures photos media "
    "newspaper television radio interview conference summit meeting meetings talks session sessions "
    "event events ceremony celebration festival match game games season team teams players fans club "
    "clubs league title win won lose lost beat draw score scored goal goals coach"
).split()
COMMON = list(dict.fromkeys(COMMON))  # the first, most frequent, rank of a word counts
SPECIAL = ["opinion", "Covid-19", "malware", "ransomware", "Partygate", "G20", "COP29", "sport", "football", "tennis"]
SITES = ["bbc.co.uk", "reuters.com", "apnews.com", "theguardian.com", "aljazeera.com", "dw.com", "lemonde.fr",
         "nytimes.com", "ft.com", "france24.com", "scmp.com", "thehindu.com", "abc.net.au", "elpais.com"]
FEEDS = ["wire", "bbc-world", "guardian-world", "aljazeera", "reuters-business", "ap-top", "dw-europe", "ft-markets"]
TAGS = ["World", "Europe", "Asia", "Africa", "Americas", "Middle East", "Business", "Politics", "Technology",
        "Science", "Health", "Climate", "sport", "Opinion"]


class Popularity:
    """Draws from a list ranked by popularity, with a Zipf skew ``s``."""

    def __init__(self, items: Sequence[str], s: float):
        self.items = list(items)
        self.cumulative = list(accumulate(1 / (rank + 1) ** s for rank in range(len(items))))

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.items, cum_weights=self.cumulative)[0]


class World:
    """The vocabulary shared by the rules and the documents."""

    def __init__(self, rng: random.Random):
        famous = [e.name for e in FAMOUS if e.type == "PERSON"]
        surnames = LAST + [a + b for a in SYLLABLES for b in ENDINGS]
        others = sorted({f"{rng.choice(FIRST)} {rng.choice(surnames)}" for _ in range(6100)} - set(famous))
        rng.shuffle(others)
        self.people = famous + others
        known_orgs = [e.name for e in FAMOUS if e.type == "ORG"]
        invented = sorted({f"{rng.choice(STEMS)} {rng.choice(SUFFIXES)}" for _ in range(2500)})
        rng.shuffle(invented)
        self.orgs = known_orgs + ORGS + invented
        self.places = PLACES
        self.lexicon = Lexicon.from_entities(FAMOUS)
        # Items follow the news, which is concentrated on a few names; rules
        # follow what users care about, which is spread much wider.
        self.in_news = {kind: Popularity(names, 0.9) for kind, names in self._kinds().items()}
        self.in_rules = {kind: Popularity(names, 0.6) for kind, names in self._kinds().items()}
        self.words = Popularity(COMMON, 1.0)

    def _kinds(self) -> dict[str, Sequence[str]]:
        return {"person": self.people, "org": self.orgs, "place": self.places, "topic": TOPICS}

    def surface(self, rng: random.Random, name: str, kind: str, repeated: bool) -> str:
        """How an item writes a name: in full, by an alias, or (once introduced) by the surname."""
        entity = self.lexicon.canonical_of(name)
        if entity and rng.random() < 0.5:
            return rng.choice(entity.names)
        if kind == "person" and repeated and rng.random() < 0.7:
            return name.split()[-1]
        return name


def q(name: str) -> str:
    """A name as a query term: quoted when it has several words."""
    return f'"{name}"' if " " in name else name


def make_rule(rng: random.Random, world: World) -> str:
    pick = {kind: popularity.pick for kind, popularity in world.in_rules.items()}
    person, org, place, topic = (pick[kind](rng) for kind in ("person", "org", "place", "topic"))
    last = person.split()[-1]
    roll = rng.random()
    if roll < 0.18:
        return q(person)
    if roll < 0.28:
        return f"person:{q(person if rng.random() < 0.5 else last)}"
    if roll < 0.36:
        return rng.choice([q(org), f"org:{q(org)}"])
    if roll < 0.50:
        alternatives = " OR ".join(q(pick["topic"](rng)) for _ in range(rng.randint(1, 3)))
        extra = f" OR {rng.choice(PREFIXES)}" if rng.random() < 0.3 else ""
        scope = "place:" if rng.random() < 0.6 else ""
        return f"{scope}{q(place)} AND ({alternatives}{extra})"
    if roll < 0.60:
        return f"{q(person)} AND {q(topic)}"
    if roll < 0.66:
        return f"{q(person)} AND {q(pick['person'](rng))}"
    if roll < 0.71:
        return f"{q(last)} NEAR/10 {q(rng.choice([org, place, topic]))}"
    if roll < 0.79:
        return f"({q(org)} OR {q(pick['org'](rng))}) AND NOT ({' OR '.join(rng.sample(SPORT, 2))})"
    if roll < 0.84:
        return f"title:({q(person)} OR {q(place)})"
    if roll < 0.87:
        return f"site:{rng.choice(SITES)} AND {q(place)}"
    if roll < 0.90:
        return f"{q(topic)} AND {rng.choice(PREFIXES)} -{rng.choice(SPORT)}"
    if roll < 0.93:
        return f"person:{q(last)} AND org:{q(org)}"
    if roll < 0.96:
        return f"{q(place)} {q(topic)} -opinion"
    if roll < 0.989:
        return f"{q(person)} OR {q(pick['person'](rng))}"
    if roll < 0.999:
        return make_regex(rng, last, topic)
    # A few firehose rules: everything but sport.
    return rng.choice(["NOT (sport OR football OR tennis)", "-opinion -sport", "NOT tag:sport"])


def make_regex(rng: random.Random, surname: str, topic: str) -> str:
    """A regex rule: spelling variants of a name or topic word, or a known pattern."""
    roll = rng.random()
    if roll < 0.4:
        return f"/{surname.lower()}s?/"
    if roll < 0.7:
        word = topic.split()[0].lower()
        return f"/{word[:-1]}({word[-1]}|{word[-1]}s)/"
    return rng.choice(["/covid-?19/", "/(ransom|mal)ware/", "/[a-z]+gate/", "/zelensk(y|yy|iy)/", "/g[0-9]+/", "/cop[0-9]+/"])


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


LABELS = {"person": "PERSON", "org": "ORG"}


def make_document(rng: random.Random, world: World) -> Document:
    news = {kind: popularity.pick for kind, popularity in world.in_news.items()}
    # A story is about a few people, organisations and places, and mentions
    # others in passing.
    main = [("person", news["person"](rng)) for _ in range(rng.randint(1, 3))]
    main += [("org", news["org"](rng)) for _ in range(rng.randint(0, 2))]
    main += [("place", news["place"](rng)) for _ in range(rng.randint(1, 2))]
    topics = [news["topic"](rng) for _ in range(rng.randint(1, 2))]
    builder = DocumentBuilder()
    seen: set[str] = set()

    def entity(field: str, kind: str, name: str) -> None:
        label = LABELS.get(kind) or ("LOC" if name in LOCS else "GPE")
        known = world.lexicon.canonical_of(name)
        builder.add(field, world.surface(rng, name, kind, name in seen), known.name if known else name, label)
        seen.add(name)

    def words(count: int) -> str:
        return " ".join(world.words.pick(rng) for _ in range(count))

    kind, name = main[0]
    entity("title", kind, name)
    builder.add("title", f" {words(rng.randint(2, 4))} {topics[0]} {words(rng.randint(1, 3))} ")
    place = next(name for kind, name in main if kind == "place")
    entity("title", "place", place)

    for i in range(rng.randint(9, 13)):
        builder.add("body", " " if i else "")
        builder.add("body", words(rng.randint(3, 9)).capitalize() + " ")
        if rng.random() < 0.7:
            kind, name = rng.choice(main)
        else:
            kind = rng.choice(["person", "org", "place"])
            name = news[kind](rng)
        entity("body", kind, name)
        builder.add("body", " " + words(rng.randint(4, 9)))
        if rng.random() < 0.4:
            builder.add("body", f" {rng.choice(['over', 'on', 'about', 'amid'])} {rng.choice(topics)}")
        if rng.random() < 0.15:
            builder.add("body", f" {words(2)} {news['topic'](rng)}")
        if rng.random() < 0.05:
            builder.add("body", " and " + rng.choice(SPECIAL))
        builder.add("body", ".")
    return Document(
        title=builder.text("title"),
        body=builder.text("body"),
        author=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        feed=rng.choice(FEEDS),
        tags=tuple(rng.sample(TAGS, rng.randint(0, 3))),
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
    distinct_per_doc = statistics.mean(len(set((d.title + " " + d.body).lower().split())) for d in docs)
    mentions_per_doc = statistics.mean(len(d.mentions) for d in docs)
    print(
        f"{len(docs)} items, {words_per_doc:.0f} words ({distinct_per_doc:.0f} distinct) "
        f"and {mentions_per_doc:.1f} mentions each; {len(set(queries))} distinct queries in 10,000 rules"
    )
    print(
        f"{'rules':>6} {'unindexed':>9} {'candidates':>10} {'matches':>8} "
        f"{'index us/item':>14} {'naive us/item':>14} {'speed-up':>8}"
    )

    index_us: dict[int, float] = {}
    matched_by_rule: Counter[str] = Counter()
    for count in (100, 1_000, 10_000):
        rules = [compile_rule(f"rule-{i}", query, world.lexicon) for i, query in enumerate(queries[:count])]
        index = RuleIndex(rules, world.lexicon)
        naive_docs = docs if count < 10_000 else docs[:200]  # naive at 10k is slow; a sample suffices
        for doc in naive_docs:  # the index must lose nothing (this also warms the caches)
            assert index.match(doc) == index.match_naive(doc)
        index_us[count] = per_item_us(index.match, docs, args.repeat)
        naive = per_item_us(index.match_naive, naive_docs, args.repeat)
        candidates = statistics.mean(len(index.candidates(d)) for d in docs)
        matched_by_rule = Counter(rule.name for d in docs for rule, _ in index.match(d))
        matches = matched_by_rule.total() / len(docs)
        print(
            f"{count:>6} {len(index.unindexed):>9} {candidates:>10.1f} {matches:>8.1f} "
            f"{index_us[count]:>14.0f} {naive:>14.0f} {naive / index_us[count]:>7.1f}x"
        )
    print(f"index cost ratio 10k/100 rules: {index_us[10_000] / index_us[100]:.1f}")
    rates = sorted(matched_by_rule[f"rule-{i}"] / len(docs) for i in range(len(queries)))
    print(
        f"of 10,000 rules, {rates.count(0) / len(rates):.0%} match none of the items, "
        f"the median rule matches {statistics.median(rates):.1%} of them, the mean rule "
        f"{statistics.mean(rates):.2%}, and {sum(r >= 0.1 for r in rates)} rules match 10% or more"
    )


if __name__ == "__main__":
    main()
