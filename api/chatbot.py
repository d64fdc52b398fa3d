"""The help chatbot's retrieval: which knowledge-base entry answers a question (issue 8).

How it finds the entry, and why. Measured on the simulator's six help questions (plus "How do
I sign in?") in English and in Hindi, asked 10 English, 7 Devanagari and 6 transliterated
Hinglish questions (top-1 right), 6 unrelated ones and 4 near misses that the entries do not
answer ("how do I cancel my policy"); scores are cosine similarities (`tests/api/test_chat.py`
keeps the same examples as a test):

==========================  =======  =====  ========  ===========  =============  ==========
TF-IDF analyzer             English  Hindi  Hinglish  right, min   unrelated,max  near, max
==========================  =======  =====  ========  ===========  =============  ==========
words (scikit-learn)        10/10    4/7    6/6       0.43         0.50           0.52
words, stop words out       9/10     7/7    5/6       0.50         0.00           0.45
chars 2-4 in words          10/10    7/7    6/6       0.40         0.43           0.40
chars 2-4, stop words out   10/10    7/7    6/6       0.36         0.22           0.39
chars 3-5, stop words out   10/10    7/7    5/6       0.33         0.17           0.39
==========================  =======  =====  ========  ===========  =============  ==========

* **Character n-grams within words** (`char_wb`, 2 to 4), chosen: word tokens break Devanagari
  apart (Python's `\\w` does not match vowel signs such as "ा", so "प्रीमियम" falls into
  pieces), and miss inflections ("log in" / "login", "भरूँ" / "भरें") and spelling variants of
  transliterations; n-grams match them. 3-5 missed a Hinglish question.
* **Stop words out**: a short list of English, Hindi and Hinglish function words, and the words
  every insurance question holds ("policy", "बीमा"); not scikit-learn's English list, which drops
  content words such as "change" and "name". Without it "what is the weather" matched "What is
  the grace period?" at 0.43, above a right answer. With it, right answers scored 0.36 or more,
  unrelated questions 0.22 at most: hence `MIN_SCORE` = 0.32, below which the chatbot says it
  does not know rather than guess. The limit of any lexical match remains: "change my address"
  finds "How do I change my nominee?" at 0.39. The language model, when configured, is told to
  say when the entries do not answer the question.
* **Language-aware**: the asked language's entries first; when none reaches `MIN_SCORE`, the
  English ones (Hinglish questions, written in Latin letters, find the English entries through
  shared words: "premium", "claim", "nominee").
* Each entry is indexed by its question and keywords (not its answer, whose wording would
  dilute the match on what people ask).

**The index cache.** One fitted index per (tenants visible, language), in this process, rebuilt
when that slice of the knowledge base changes. The change test is one aggregate over the
slice's active rows, `count(*)` and the sum of a 64-bit hash of each row's id, question, answer
and keywords (`hashtextextended`): 0.6 ms for 667 entries here. Not `max(updated_at)`, which the
issue suggests: counting a use (`usage_count`) is an UPDATE, so the `set_updated_at` trigger
moves `updated_at` on every answered question (the warehouse extract needs it to), and the index
would be rebuilt after every answer. The fingerprint is read before the rows, so a change in
between only causes one more rebuild, never a stale index under a new fingerprint.
"""

from __future__ import annotations

import re
import threading
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.security.tokens import Principal

MIN_SCORE = 0.32  # cosine similarity; see the measurements above
TOP_K = 3  # entries given to the language model
FALLBACK_LANGUAGE = "en"
MAX_INDEXES = 64  # (tenant set, language) indexes per process (LRU); ~1.4 MB each at 300 entries


# Function words only: what a question is *about* is in the rest.
def _words(text: str) -> list[str]:
    return text.split()


STOP_WORDS = frozenset(
    # English
    _words(
        "a an the is are was were be been am do does did i me my mine we our you your it its this "
        "that these those what which who whom how when where why can could should would will shall "
        "may might must to of in on at by for with from about as into and or but if so not no "
        "there here get got have has had please tell know want need"
    )
    # Hindi (Devanagari)
    + _words(
        "मैं मेरा मेरी मेरे हम हमारा आप आपका आपकी अपना अपनी अपने क्या है हैं था थी थे कैसे कब "
        "कहाँ कहां क्यों कौन किन किस कितना कितने कितनी करें करे करूँ करना कर के का की को से "
        "में पर और या हो गई गया गए तो भी यह वह ये वे जी"
    )
    # Hinglish (Latin letters)
    + _words(
        "kaise kya hai hain tha thi kab kahan kyun kaun kitna kitne kitni karna kare karu karen "
        "karo ka ki ke ko se me mein pe par aur ya mera meri mere apna apni apne hum aap ji"
    )
    # Words in nearly every question to an insurer's help desk, so they tell entries apart no
    # better than function words (measured: "how do I cancel my policy" scored 0.36 against
    # "How can I revive a lapsed policy?" on "policy" alone; 0.12 without it)
    + _words("policy policies पॉलिसी पालिसी insurance बीमा")
)
# Words: letters and digits of any script, with the Indic blocks' vowel signs and viramas
# (U+0900-U+0D7F) and the zero-width joiners that Indic spelling uses.
_WORD = re.compile(r"[\w\u0900-\u0D7F\u200c\u200d]+")


def normalise(value: str) -> str:
    """NFC, case-folded, stop words out (all words kept when every one is a stop word)."""
    words = _WORD.findall(unicodedata.normalize("NFC", value).casefold())
    kept = [w for w in words if w not in STOP_WORDS]
    return " ".join(kept or words)


@dataclass(frozen=True)
class Entry:
    id: uuid.UUID
    question: str
    answer: str


@dataclass(frozen=True)
class Match:
    entry: Entry
    score: float  # cosine similarity of the TF-IDF vectors, 0..1


class Index:
    """A fitted TF-IDF index over one slice of the knowledge base."""

    def __init__(self, entries: Sequence[Entry], documents: Sequence[str]) -> None:
        self.entries = tuple(entries)
        self._vectorizer: TfidfVectorizer | None = None
        if not self.entries:
            return
        vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), preprocessor=normalise, sublinear_tf=True
        )
        try:
            self._matrix = vectorizer.fit_transform(documents)
        except ValueError:  # nothing to index (no characters at all)
            return
        self._vectorizer = vectorizer

    def search(self, question: str, k: int = TOP_K) -> list[Match]:
        """The `k` entries most like `question`, best first (score > 0 only)."""
        if self._vectorizer is None:
            return []
        query = self._vectorizer.transform([question])
        # Rows are L2-normalised, so the dot product is the cosine similarity.
        scores = (self._matrix @ query.T).toarray().ravel()
        order = np.argsort(-scores, kind="stable")[:k]
        return [Match(self.entries[i], float(scores[i])) for i in order if scores[i] > 0]


# --------------------------------------------------------------------------- the database

# Under the API role's row-level security: the caller's tenants' entries and the shared ones.
_FINGERPRINT = text(
    "SELECT count(*) AS entries, coalesce(sum(hashtextextended(concat_ws(chr(31), id::text,"
    " question, answer, array_to_string(keywords, chr(30))), 0)), 0) AS checksum"
    " FROM chatbot_knowledge_base WHERE is_active AND language = :language"
)
_ROWS = text(
    "SELECT id, question, answer, keywords FROM chatbot_knowledge_base"
    " WHERE is_active AND language = :language ORDER BY id"
)
_COUNT_USE = text("SELECT public.count_knowledge_base_use(:entry)")

Fingerprint = tuple[int, int]


def _fingerprint(session: Session, language: str) -> Fingerprint:
    row = session.execute(_FINGERPRINT, {"language": language}).one()
    return int(row.entries), int(row.checksum)


def _build(session: Session, language: str) -> Index:
    rows = session.execute(_ROWS, {"language": language}).all()
    entries = [Entry(id=r.id, question=r.question, answer=r.answer) for r in rows]
    documents = [" ".join([r.question, *(r.keywords or ())]) for r in rows]
    return Index(entries, documents)


def tenants_key(principal: Principal) -> tuple[str, ...]:
    """Which rows the caller's row-level security admits: every tenant, or these ones."""
    if principal.all_tenants:
        return ("*",)
    return tuple(sorted(str(t) for t in principal.tenant_ids))


class IndexCache:
    """Fitted indexes by (tenants, language), each kept with the fingerprint it was built on."""

    def __init__(self, max_indexes: int = MAX_INDEXES) -> None:
        self._indexes: OrderedDict[tuple[tuple[str, ...], str], tuple[Fingerprint, Index]] = (
            OrderedDict()
        )
        self._max = max_indexes
        self._lock = threading.Lock()
        self.builds = 0  # how many indexes were fitted (tests and metrics read it)

    def get(self, session: Session, principal: Principal, language: str) -> Index:
        key = (tenants_key(principal), language)
        fingerprint = _fingerprint(session, language)  # first: see the module docstring
        with self._lock:
            cached = self._indexes.get(key)
            if cached is not None and cached[0] == fingerprint:
                self._indexes.move_to_end(key)
                return cached[1]
        index = _build(session, language)
        with self._lock:
            self.builds += 1
            self._indexes[key] = (fingerprint, index)
            self._indexes.move_to_end(key)
            while len(self._indexes) > self._max:
                self._indexes.popitem(last=False)
        return index


INDEXES = IndexCache()  # per process, like the model weights of any worker


@dataclass(frozen=True)
class Retrieval:
    """What the knowledge base offers for a question: the entries that reach `MIN_SCORE` (best
    first, all of one language), that language, and the best score seen even if below it."""

    matches: list[Match]
    language: str
    best_score: float


def base_language(code: str) -> str:
    """'hi_IN' -> 'hi': entries are stored by language, not region."""
    return code.split("_", 1)[0].lower()


def retrieve(session: Session, principal: Principal, question: str, language: str) -> Retrieval:
    """The asked language's entries first, then the English ones (see the module docstring)."""
    best = 0.0
    for lang in dict.fromkeys([language, FALLBACK_LANGUAGE]):
        found = INDEXES.get(session, principal, lang).search(question)
        if found:
            best = max(best, found[0].score)
        good = [m for m in found if m.score >= MIN_SCORE]
        if good:
            return Retrieval(matches=good, language=lang, best_score=good[0].score)
    return Retrieval(matches=[], language=language, best_score=best)


def count_use(session: Session, entry_id: uuid.UUID) -> int | None:
    """Add 1 to the entry's `usage_count` (through the SECURITY DEFINER function of revision
    0003, which shared entries need); the new count, None when the entry is not visible."""
    return session.execute(_COUNT_USE, {"entry": entry_id}).scalar_one_or_none()
