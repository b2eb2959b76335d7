"""Near-duplicate detection: which earlier item tells the same story. Pure.

Two items are one story when they share a canonical link (the same article,
reached through another feed, an AMP mirror or a tracking link), or when their
texts are near-duplicates: rewrites of one wire story by different outlets.

    link ──── canonical_link ─────────────────────────── "link:<key>"
    title + text ── content words ── MinHash (128 × 32 bit) ── Fingerprint
                                          └─ 32 LSH bands of 2 ─ "mh<band>:<hex>"

How the pipeline uses it, for each fresh item (the store does the SQL)::

    link_key = canonical_link(item.link)
    fp = fingerprint(item.title, item.text)
    keys = lookup_keys(link_key, fp)
    candidates = store.candidates(keys, since=seen_at - CANDIDATE_WINDOW)
    match = same_story(link_key, fp, candidates, threshold=configured)
    story_id = match.story_id if match else <this item's own id>
    store: item row with link_key, fp.to_db(), story_id; one story_keys row per key

Why content-word sets (1-shingles) and MinHash, not longer shingles or
SimHash: on rewrites of one wire story (reordered and merged sentences,
another headline, paragraphs added or dropped) the exact Jaccard of content
words was 0.57–0.77, against at most 0.29 for different stories about the
same people on the same day; 3-word shingles gave 0.13–0.39 against up to 0.18
(overlapping), and SimHash distances of the two groups overlapped (rewrites up
to 19 bits apart, different stories from 16). Rewrites keep the words and
change their order, so order-free terms separate best.

Estimates carry noise: with 128 permutations the standard error of an
estimated Jaccard J is sqrt(J(1 - J) / 128), about 0.044 near 0.45.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from monitor.rules.text import tokenize

if TYPE_CHECKING:
    import numpy as np

# --- parameters ---------------------------------------------------------------
# Changing PERMUTATIONS, the hash family, the term rules or the band layout
# makes stored fingerprints incomparable: bump FORMAT_VERSION with them.

FORMAT_VERSION = 1
PERMUTATIONS = 128
BANDS = 32
ROWS_PER_BAND = 2
# Below this many distinct content words (a bare headline), word overlap says
# little: "Putin to meet Xi in Beijing" and "Putin meets Xi in Beijing" are
# different events. Such items join a story by their link only.
MIN_TERMS = 12
# Midway between the rewrites (estimated 0.54 and up) and different stories on
# the same subject (0.35 and down). Erring high is safer: a false merge hides
# an alert, a missed merge only repeats one.
DEFAULT_THRESHOLD = 0.45
# How far back the store should look for candidates: wire rewrites appear
# within hours; a follow-up days later deserves its own alert.
CANDIDATE_WINDOW = timedelta(days=3)

# With bands of 2 rows, a pair with Jaccard J shares a band key with
# probability 1 - (1 - J²)^32: 0.95 at J = 0.3, 0.9993 at 0.45, while an
# unrelated pair (J around 0.03) shares one 3% of the time. So any threshold
# from 0.3 up keeps its recall, and retrieval stays cheap.
assert BANDS * ROWS_PER_BAND <= PERMUTATIONS

# --- canonical links --------------------------------------------------------------

# Query parameters that say how a reader arrived, not what they read.
_TRACKING_PREFIXES = ("utm_", "at_", "ns_", "guce_")
_TRACKING = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
        "mc_cid", "mc_eid", "ocid", "cmpid", "cmp", "s_cid", "wt.mc_id", "ito", "smid", "smtyp",
        "ref", "ref_src", "ref_url", "_ga", "_gl", "guccounter", "mbid", "spm", "rss",
    }
)  # fmt: skip
# Mobile and AMP mirrors of a site serve the same article as the main host.
_MIRROR_PREFIXES = ("www.", "m.", "mobile.", "amp.")
# AMP caches wrap the publisher's URL: google.com/amp/s/<url>, <host>.cdn.ampproject.org/c/s/<url>.
_AMP_CACHE = re.compile(r"^(?:(?:www\.)?google\.[a-z.]+/amp|[^/]+\.cdn\.ampproject\.org/[cv])/(s/)?(.+)$")


def canonical_link(link: str | None) -> str | None:
    """The article a link points to, as a comparable key, or None.

    ``https://www.example.org/world/a/amp/?utm_source=x#top`` -> ``example.org/world/a``.
    Drops scheme, fragment, trailing slash, tracking parameters, ``www.`` /
    ``m.`` / ``amp.`` hosts and AMP variants; unwraps AMP cache URLs. A link
    to a bare host is None: some feeds give every item their home page, and
    matching on it would fold every item into one story.
    """
    if not link or not link.strip():
        return None
    try:
        parts = urlsplit(link.strip())
        host, port = parts.hostname, parts.port
    except ValueError:  # an unparsable port or host
        return None
    if not host or parts.scheme.lower() not in ("http", "https", ""):
        return None
    host = host.rstrip(".")
    for prefix in _MIRROR_PREFIXES:
        if host.startswith(prefix) and "." in host[len(prefix) :]:  # amp.dev stays amp.dev
            host = host[len(prefix) :]
    wrapped = _AMP_CACHE.match(host + parts.path)
    if wrapped:
        scheme = "https" if wrapped.group(1) else "http"
        return canonical_link(f"{scheme}://{wrapped.group(2)}?{parts.query}")
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    path = _canonical_path(parts.path)
    if not path:
        return None
    query = sorted(
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_noise_parameter(name.lower(), value.lower())
    )
    return host + path + (f"?{urlencode(query)}" if query else "")


def _canonical_path(path: str) -> str:
    # Percent-encoding varies between feeds of one site ("%C3%A9" vs "é");
    # quote() after a round trip spells both the same way.
    segments = [quote(unquote(s), safe="!$&'()*+,;=:@~-._") for s in path.split("/") if s]
    # /amp as a segment (BBC /news/amp/..., WordPress .../slug/amp/) and
    # ".amp.html" are the AMP renderings of the same article.
    segments = [s for s in segments if s.lower() != "amp"]
    if segments and segments[-1].lower().endswith(".amp.html"):
        segments[-1] = segments[-1][: -len(".amp.html")] + ".html"
    return "/" + "/".join(segments) if segments else ""


def _is_noise_parameter(name: str, value: str) -> bool:
    if name in _TRACKING or name.startswith(_TRACKING_PREFIXES):
        return True
    return name == "amp" or (name == "outputtype" and value == "amp")


# --- content words --------------------------------------------------------------

# Agency datelines and credit lines: the same in every story of one outlet, so
# they would make different stories look alike. Each pattern runs only when its
# marker occurs in the lower-cased text: a scan for a plain string is far
# cheaper than a case-insensitive regex search.
_BOILERPLATE = [
    (marker, re.compile(pattern, re.IGNORECASE))
    for marker, pattern in (
        (")", r"^\s*[^()\n]{0,80}?\((?:AP|Reuters|AFP|Bloomberg|UPI|dpa|PA|CNN|Xinhua|TASS)\)\s*[-—–]+\s*"),
        (" by ", r"\((?:(?:additional )?reporting|writing|editing|compiled) by[^)]*\)"),
        ("copyright", r"\bcopyright\s+(?:©\s*)?\d{4}\b[^.]*\."),
        ("©", r"©\s*\d{4}\b[^.]*\."),
        ("rights reserved", r"\ball rights reserved\.?"),
        ("appeared first on", r"\bthe post\b.{1,300}?\bappeared first on\b.*$"),
        ("continue reading", r"\bcontinue reading\W*$"),
        ("read more", r"\bread more\W*$"),
        ("read the full", r"\bread the full (?:story|article)\W*$"),
    )
]
# Function words carry no story; reporting verbs are in every story.
_STOPWORDS = frozenset(
    """
    a about after against all also am an and any are as at be because been before being between both
    but by can could did do does doing down during each few for from further had has have having he
    her here hers him his how i if in into is it its itself just me more most my no nor not now of
    off on once only or other our ours out over own same she should so some such than that the their
    theirs them then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours
    said says say told according
    """.split()
)


def content_words(title: str, text: str) -> frozenset[str]:
    """The distinct folded words of an item that can tell stories apart."""
    lowered = text.lower()
    for marker, pattern in _BOILERPLATE:
        if marker in lowered:
            text = pattern.sub(" ", text)
    # tokenize, not the cached words(): article bodies would fill its cache.
    folded = tokenize(f"{title}\n{text}").folded
    return frozenset(word for word in folded if word not in _STOPWORDS)


# --- fingerprints ---------------------------------------------------------------

_HEADER = struct.Struct("<BI")  # format version, number of distinct terms
_SIGNATURE_BYTES = PERMUTATIONS * 4
_EMPTY = b"\xff" * _SIGNATURE_BYTES


def _family_parameters(label: str) -> np.ndarray:
    import numpy as np

    # Fixed forever (fingerprints are stored), so derived from a hash of a
    # label rather than from a random generator whose algorithm may change.
    values = [
        int.from_bytes(hashlib.blake2b(f"news-monitor minhash {label} {i}".encode(), digest_size=8).digest(), "little")
        for i in range(PERMUTATIONS)
    ]
    return np.array(values, dtype=np.uint64)[:, np.newaxis]


@functools.cache
def _family() -> tuple[np.ndarray, np.ndarray]:
    """Multiply-add-shift (Dietzfelbinger): h(x) = ((a·x + b) mod 2^64) >> 32 for 32-bit x is a
    strongly universal family onto 32 bits; `a` must be odd.

    Made on first use, like numpy's import (0.07 s), which a run with nothing new never needs.
    """
    import numpy as np

    return _family_parameters("a") | np.uint64(1), _family_parameters("b")


@dataclass(frozen=True)
class Fingerprint:
    """The MinHash signature of an item's content words, and how many there were.

    ``signature`` holds PERMUTATIONS little-endian 32-bit minima. Store it with
    :meth:`to_db` (a 517-byte BLOB) and read it back with :meth:`from_db`.
    """

    signature: bytes
    size: int

    def __post_init__(self) -> None:
        if len(self.signature) != _SIGNATURE_BYTES:
            raise ValueError(f"a signature has {_SIGNATURE_BYTES} bytes, not {len(self.signature)}")

    def to_db(self) -> bytes:
        return _HEADER.pack(FORMAT_VERSION, self.size) + self.signature

    @classmethod
    def from_db(cls, data: bytes | bytearray | memoryview) -> Fingerprint:
        """Read :meth:`to_db` output; ValueError for another format version or a damaged value."""
        if len(data) != _HEADER.size + _SIGNATURE_BYTES:
            raise ValueError(f"a stored fingerprint has {_HEADER.size + _SIGNATURE_BYTES} bytes, not {len(data)}")
        version, size = _HEADER.unpack_from(data)
        if version != FORMAT_VERSION:
            raise ValueError(f"fingerprint format {version} is not {FORMAT_VERSION}; recompute it from the item")
        return cls(bytes(data[_HEADER.size :]), size)

    @property
    def comparable(self) -> bool:
        """Whether the text is long enough for a text match (MIN_TERMS words)."""
        return self.size >= MIN_TERMS

    def minima(self) -> np.ndarray:
        return self._minima

    @functools.cached_property
    def _minima(self) -> np.ndarray:
        import numpy as np

        # Read once: a candidate is compared with every new item that shares one of its keys.
        return np.frombuffer(self.signature, dtype="<u4")


def fingerprint(title: str, text: str) -> Fingerprint:
    """The fingerprint of an item's title and text (case, accents, boilerplate ignored)."""
    terms = content_words(title, text)
    if not terms:
        return Fingerprint(_EMPTY, 0)
    import numpy as np

    a, b = _family()
    hashes = np.fromiter((_term_hash(term) for term in terms), dtype=np.uint64, count=len(terms))
    # One row per permutation; numpy's uint64 arithmetic wraps mod 2^64, as the family needs.
    permuted = (a * hashes[np.newaxis, :] + b) >> np.uint64(32)
    return Fingerprint(permuted.min(axis=1).astype("<u4").tobytes(), len(terms))


def _term_hash(term: str) -> int:
    # A stable 32-bit hash: Python's hash() of a str changes with every process.
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """Estimated Jaccard similarity of two items' content words, 0..1."""
    if not a.size or not b.size:
        return 0.0
    return int((a.minima() == b.minima()).sum()) / PERMUTATIONS


def lookup_keys(link_key: str | None, fp: Fingerprint) -> list[str]:
    """The keys under which the store indexes an item (``link_key`` from :func:`canonical_link`).

    Two items with the same canonical link share its key; two items with
    estimated similarity J share at least one band key with probability
    1 - (1 - J²)^32. A text too short to compare gets no band keys.
    """
    keys = [f"link:{link_key}"] if link_key else []
    if fp.comparable:
        width = ROWS_PER_BAND * 4  # bytes of one band's minima
        keys += [f"mh{band:02d}:{fp.signature[band * width : (band + 1) * width].hex()}" for band in range(BANDS)]
    return keys


# --- the decision ---------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """An earlier item the store found under one of the new item's lookup keys."""

    story_id: int
    item_id: int
    link_key: str | None
    fingerprint: Fingerprint
    seen_at: datetime


@dataclass(frozen=True)
class StoryMatch:
    """Why a new item joins an earlier story: the earlier item it matched, and how."""

    candidate: Candidate
    reason: Literal["link", "text"]
    similarity: float  # estimated Jaccard of the texts, also for a link match

    @property
    def story_id(self) -> int:
        return self.candidate.story_id


def same_story(
    link_key: str | None,
    fp: Fingerprint,
    candidates: Iterable[Candidate],
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> StoryMatch | None:
    """The earlier item whose story a new item belongs to, or None for a new story.

    The same canonical link wins outright (the earliest such item); otherwise
    the candidate with the highest estimated similarity at or above
    ``threshold``, provided both texts have MIN_TERMS content words. Ties go to
    the earliest item, so copies attach to where the story began.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    best: StoryMatch | None = None
    for candidate in candidates:
        score = similarity(fp, candidate.fingerprint)
        if link_key is not None and candidate.link_key == link_key:
            match = StoryMatch(candidate, "link", score)
        elif fp.comparable and candidate.fingerprint.comparable and score >= threshold:
            match = StoryMatch(candidate, "text", score)
        else:
            continue
        if best is None or _rank(match) < _rank(best):
            best = match
    return best


def _rank(match: StoryMatch) -> tuple[int, float, datetime, int]:
    # Lowest first: any link match, then the most similar text, then the earliest item.
    closeness = 0.0 if match.reason == "link" else -match.similarity
    return (match.reason != "link", closeness, match.candidate.seen_at, match.candidate.item_id)
