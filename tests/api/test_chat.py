"""The help chatbot over HTTP (`POST /v1/chat`) on the two-tenant world, with a real
OpenAI-compatible server on loopback where a language model is wanted.

Also here: the retrieval measurements of `api.chatbot`'s docstring, kept as a test, and
`FakeLlm`, the stand-in language-model server that `test_summary.py` uses too.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from api import chatbot
from api.db import scoped_session
from api.llm import LlmConfig, complete
from api.main import create_app
from api.security.tokens import Principal
from tests.api.conftest import Api, World, new_phone
from tests.live_server import free_port, live_server
from warehouse.operational.enums import UserRole, UserStatus
from warehouse.operational.models import ChatbotKnowledgeBase, Policyholder, User
from warehouse.settings import Settings

# --------------------------------------------------------------------------- a language model


@dataclass
class FakeLlm:
    """An OpenAI-compatible chat-completions server: records each request, answers `reply`
    after `delay` seconds with a proper `chat.completion` body and its `usage`."""

    reply: str = "A model's answer."
    delay: float = 0.0
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366}
    )
    status: int = 200  # another status: an OpenAI-style error body instead
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    def prompt(self, index: int = -1) -> str:
        """Everything the model was told in one request, as one text."""
        return "\n".join(m["content"] for m in self.requests[index]["body"]["messages"])


@contextmanager
def fake_llm(**kwargs: Any) -> Iterator[FakeLlm]:
    fake = FakeLlm(**kwargs)
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        fake.requests.append({"body": body, "authorization": request.headers.get("authorization")})
        if fake.delay:
            await asyncio.sleep(fake.delay)
        if fake.status != 200:
            error = {"message": "refused", "type": "server_error", "code": None}
            return JSONResponse({"error": error}, status_code=fake.status)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": fake.reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": fake.usage,
            }
        )

    with live_server(app) as base:
        fake.base_url = f"{base}/v1"
        yield fake


def llm_settings(base_url: str | None, **overrides: Any) -> dict[str, Any]:
    """Settings fields for a language model at `base_url` (None: no model configured)."""
    if base_url is None:
        return {"openai_base_url": None, "openai_api_key": None, **overrides}
    return {
        "openai_base_url": base_url,
        "openai_api_key": SecretStr("test"),
        "llm_model": "test-model",
        **overrides,
    }


def closed_port_url() -> str:
    """A loopback URL nothing listens on: a language-model server that is down."""
    return f"http://127.0.0.1:{free_port()}/v1"


@contextmanager
def captured_logs(name: str) -> Iterator[list[logging.LogRecord]]:
    """Records of logger `name` at INFO and above (the suite runs with `-p no:logging`, so
    without caplog). The app runs in this process, so its records land here."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger, handler = logging.getLogger(name), Keep(logging.INFO)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# --------------------------------------------------------------------------- the client


@pytest.mark.parametrize(
    ("status", "reply", "attempts"),
    [
        (200, "fine", 1),
        (500, "", 3),  # retried: a server error may pass
        (429, "", 3),
        (400, "", 1),  # not retried: the request itself is wrong
        (401, "", 1),
        (200, "   ", 1),  # an empty answer is no answer
    ],
)
def test_the_client_retries_what_a_retry_can_cure_and_never_raises(
    status: int, reply: str, attempts: int
) -> None:
    with fake_llm(status=status, reply=reply) as llm:
        config = LlmConfig(llm.base_url, "test", "test-model", timeout=5.0, max_retries=2)
        answer = complete(config, [{"role": "user", "content": "hello"}], purpose="test")
    assert len(llm.requests) == attempts
    if reply.strip():
        assert answer is not None
        assert (answer.text, answer.model) == ("fine", "test-model")
        assert answer.usage is not None and answer.usage.total_tokens == 366
    else:
        assert answer is None


def test_no_server_configured_means_no_request() -> None:
    settings = Settings(**llm_settings(None))
    assert LlmConfig.from_settings(settings) is None
    assert complete(None, [{"role": "user", "content": "hello"}], purpose="test") is None
    keyed = Settings(openai_api_key=SecretStr("sk-test"), openai_base_url=None)
    assert LlmConfig.from_settings(keyed).base_url == "https://api.openai.com/v1"  # type: ignore[union-attr]
    local = Settings(openai_api_key=None, openai_base_url="http://127.0.0.1:8000/v1")
    assert LlmConfig.from_settings(local).api_key == "not-needed"  # type: ignore[union-attr]
    assert "sk-test" not in repr(LlmConfig.from_settings(keyed))


# --------------------------------------------------------------------------- retrieval quality

EN = {
    "pay": ("How do I pay my premium?", "pay premium upi"),
    "grace": ("What is the grace period?", "grace late due"),
    "revive": ("How can I revive a lapsed policy?", "revive lapsed"),
    "tax": ("Which premiums save tax?", "tax 80c 80d"),
    "claim": ("How do I make a claim?", "claim death hospital"),
    "nominee": ("How do I change my nominee?", "nominee nomination"),
    "signin": ("How do I sign in?", "login otp"),
}
HI = {
    "pay": ("मैं अपना प्रीमियम कैसे भरूँ?", "भुगतान प्रीमियम यूपीआई"),
    "grace": ("ग्रेस पीरियड क्या है?", "ग्रेस अवधि देर"),
    "revive": ("बंद हुई पॉलिसी को फिर से कैसे चालू करें?", "पुनर्जीवन लैप्स"),
    "tax": ("किन प्रीमियम पर टैक्स बचता है?", "टैक्स 80सी 80डी"),
    "claim": ("क्लेम कैसे करें?", "दावा मृत्यु अस्पताल"),
    "nominee": ("मैं अपना नॉमिनी कैसे बदलूँ?", "नॉमिनी नामांकन"),
}
ASKED = [  # (question, language asked, the entry that answers it)
    ("how can i pay the premium online", "en", "pay"),
    ("what happens if I pay late, is there a grace period", "en", "grace"),
    ("my policy lapsed, can I restart it", "en", "revive"),
    ("tax benefit on premium 80C", "en", "tax"),
    ("how to claim after death of the insured", "en", "claim"),
    ("change nominee name", "en", "nominee"),
    ("I cannot log in", "en", "signin"),
    ("pay premium by UPI", "en", "pay"),
    ("claim hospital bills", "en", "claim"),
    ("what is grace", "en", "grace"),
    ("प्रीमियम कैसे भरें", "hi", "pay"),
    ("ग्रेस पीरियड कितने दिन का है", "hi", "grace"),
    ("पॉलिसी बंद हो गई फिर से चालू कैसे करें", "hi", "revive"),
    ("टैक्स कैसे बचाएं", "hi", "tax"),
    ("क्लेम करना है", "hi", "claim"),
    ("नॉमिनी बदलना है", "hi", "nominee"),
    ("यूपीआई से भुगतान", "hi", "pay"),
    ("premium kaise bharu", "hi", "pay"),  # Hinglish: found among the English entries
    ("grace period kitne din ka hai", "hi", "grace"),
    ("claim kaise kare", "hi", "claim"),
    ("nominee change karna hai", "hi", "nominee"),
    ("policy lapsed hai revive kaise kare", "hi", "revive"),
    ("tax kitna bachega premium pe", "hi", "tax"),
]
UNRELATED = [
    "what is the weather in mumbai today",
    "tell me a joke",
    "best cricket team",
    "मौसम कैसा है",
    "aaj match kaun jeetega",
    "how do I cancel my policy",
    "what bonus will my policy get",
    "can I get a loan on my policy",
]


def _index(corpus: dict[str, tuple[str, str]]) -> tuple[list[str], chatbot.Index]:
    keys = list(corpus)
    entries = [chatbot.Entry(uuid.uuid4(), q, f"answer {k}") for k, (q, _) in corpus.items()]
    return keys, chatbot.Index(entries, [f"{q} {kw}" for q, kw in corpus.values()])


def _best(question: str, language: str) -> tuple[str | None, float]:
    """The retrieval rule of `api.chatbot.retrieve` without a database."""
    indexes = {"en": _index(EN), "hi": _index(HI)}
    for lang in dict.fromkeys([language, "en"]):
        keys, index = indexes[lang]
        found = index.search(question)
        if found and found[0].score >= chatbot.MIN_SCORE:
            return keys[index.entries.index(found[0].entry)], found[0].score
    return None, 0.0


@pytest.mark.parametrize(("question", "language", "expected"), ASKED)
def test_retrieval_finds_the_right_entry_in_english_hindi_and_hinglish(
    question: str, language: str, expected: str
) -> None:
    found, score = _best(question, language)
    assert found == expected, (question, found, score)


@pytest.mark.parametrize("question", UNRELATED)
def test_unrelated_questions_stay_below_the_threshold(question: str) -> None:
    assert _best(question, "hi") == (None, 0.0)
    assert _best(question, "en") == (None, 0.0)


def test_words_tokens_break_devanagari_which_character_ngrams_keep() -> None:
    """Why characters: Python's `\\w` stops at Devanagari vowel signs."""
    assert "प्रीमियम".isalnum() is False
    assert chatbot.normalise("मैं अपना प्रीमियम कैसे भरूँ?") == "प्रीमियम भरूँ"


# --------------------------------------------------------------------------- over HTTP


@dataclass
class Knowledge:
    """Entries this module adds to the two-tenant world, and a Hindi-speaking policyholder."""

    pay_en: uuid.UUID
    pay_hi: uuid.UUID
    grace_en: uuid.UUID
    tenant_a: uuid.UUID  # an answer only tenant A's people may read
    tenant_b: uuid.UUID
    hindi_holder: uuid.UUID  # user id, tenant A, language_preference hi


@pytest.fixture(scope="module")
def knowledge(owner_engine: Engine, world: World) -> Knowledge:
    def entry(question: str, answer: str, language: str, keywords: list[str], **kw: Any):
        row = ChatbotKnowledgeBase(
            category="help",
            question=question,
            answer=answer,
            language=language,
            keywords=keywords,
            **kw,
        )
        session.add(row)
        session.flush()
        return row.id

    with Session(owner_engine) as session, session.begin():
        made = Knowledge(
            pay_en=entry(
                "How do I pay my premium?",
                "Open the policy, tap Pay premium and choose UPI, card or net banking.",
                "en",
                ["pay", "premium", "upi"],
            ),
            pay_hi=entry(
                "मैं अपना प्रीमियम कैसे भरूँ?",
                "पॉलिसी खोलें, प्रीमियम भरें दबाएँ और यूपीआई, कार्ड या नेट बैंकिंग चुनें।",
                "hi",
                ["भुगतान", "प्रीमियम", "यूपीआई"],
            ),
            grace_en=entry(
                "What is the grace period?",
                "15 days for monthly premiums and 30 days for other modes, from the due date.",
                "en",
                ["grace", "late", "due"],
            ),
            tenant_a=entry(
                "How do I redeem my loyalty vouchers?",
                "TENA members redeem vouchers at any TENA branch.",
                "en",
                ["loyalty", "voucher", "redeem"],
                provider_id=world.a.provider_id,
            ),
            tenant_b=entry(
                "How do I redeem my loyalty vouchers?",
                "TENB members redeem vouchers online.",
                "en",
                ["loyalty", "voucher", "redeem"],
                provider_id=world.b.provider_id,
            ),
            hindi_holder=uuid.uuid4(),
        )
        user = User(
            phone=new_phone(),
            role=UserRole.POLICYHOLDER,
            status=UserStatus.ACTIVE,
            full_name="Sunita Verma",
            language_preference="hi",
        )
        session.add(user)
        session.flush()
        session.add(
            Policyholder(
                provider_id=world.a.provider_id,
                agent_id=world.a.agent_id,
                user_id=user.id,
                customer_code="TENA-C-HI",
                full_name="Sunita Verma",
                phone=user.phone,
            )
        )
        made.hindi_holder = user.id
    return made


@pytest.fixture(scope="module")
def plain(api: Api) -> Iterator[str]:
    """The app with no language model configured (whatever the environment says)."""
    settings = api.settings.model_copy(update=llm_settings(None))
    with live_server(create_app(settings)) as base:
        yield base


def ask(api: Api, base: str, user: uuid.UUID, **body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.token(user)}"}
    return httpx.post(f"{base}/v1/chat", json=body, headers=headers, timeout=30)


def usage(engine: Engine, entry: uuid.UUID) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT usage_count FROM chatbot_knowledge_base WHERE id = :id"), {"id": entry}
        ).scalar_one()


def test_an_english_question_gets_the_shared_entry_and_counts_its_use(
    api: Api, world: World, knowledge: Knowledge, plain: str
) -> None:
    before = usage(api.engine, knowledge.pay_en)
    answer = ask(api, plain, world.a.holder_user, question="how can I pay premium?", language="en")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "knowledge_base"
    assert body["entry_id"] == str(knowledge.pay_en)
    assert body["question_matched"] == "How do I pay my premium?"
    assert body["answer"].startswith("Open the policy, tap Pay premium")
    assert body["language"] == "en"
    assert body["score"] >= chatbot.MIN_SCORE
    # A policyholder may not UPDATE a shared entry; the counting function may, for it.
    assert usage(api.engine, knowledge.pay_en) == before + 1


def test_a_hindi_question_gets_the_hindi_entry(
    api: Api, world: World, knowledge: Knowledge, plain: str
) -> None:
    body = ask(api, plain, world.a.holder_user, question="प्रीमियम कैसे भरें", language="hi").json()
    assert body["entry_id"] == str(knowledge.pay_hi)
    assert body["language"] == "hi"
    assert body["source"] == "knowledge_base"


def test_the_preferred_language_is_the_default(api: Api, knowledge: Knowledge, plain: str) -> None:
    body = ask(api, plain, knowledge.hindi_holder, question="प्रीमियम भुगतान").json()
    assert (body["entry_id"], body["language"]) == (str(knowledge.pay_hi), "hi")


def test_hinglish_falls_back_to_the_english_entries(
    api: Api, world: World, knowledge: Knowledge, plain: str
) -> None:
    body = ask(
        api, plain, world.a.holder_user, question="grace period kitne din ka hai", language="hi"
    ).json()
    assert (body["entry_id"], body["language"]) == (str(knowledge.grace_en), "en")


def test_each_tenant_sees_its_own_entries_and_the_shared_ones_only(
    api: Api, world: World, knowledge: Knowledge, plain: str
) -> None:
    question = {"question": "redeem loyalty vouchers", "language": "en"}
    from_a = ask(api, plain, world.a.holder_user, **question).json()
    from_b = ask(api, plain, world.b.holder_user, **question).json()
    assert from_a["entry_id"] == str(knowledge.tenant_a)
    assert "TENA" in from_a["answer"]
    assert from_b["entry_id"] == str(knowledge.tenant_b)
    assert "TENA" not in from_b["answer"]
    # Tenant A's agent and admin: tenant A's entry too; never B's.
    for user in (world.a.agent_user, world.a.admin_user):
        assert ask(api, plain, user, **question).json()["entry_id"] == str(knowledge.tenant_a)


def test_nothing_close_enough_says_so_and_points_to_the_agent(
    api: Api, world: World, knowledge: Knowledge, plain: str
) -> None:
    for language, expected in (("en", "agent"), ("hi", "एजेंट"), ("ta", "agent")):
        body = ask(
            api, plain, world.a.holder_user, question="tell me a joke", language=language
        ).json()
        assert body["source"] == "fallback"
        assert body["entry_id"] is None and body["question_matched"] is None
        assert body["score"] < chatbot.MIN_SCORE
        assert expected in body["answer"]


def test_the_index_is_reused_until_the_knowledge_base_changes(
    api: Api, world: World, knowledge: Knowledge, plain: str, owner_engine: Engine
) -> None:
    question = {"question": "is there a grace period", "language": "en"}
    ask(api, plain, world.b.holder_user, **question)
    builds = chatbot.INDEXES.builds
    first = ask(api, plain, world.b.holder_user, **question).json()
    assert chatbot.INDEXES.builds == builds  # counting a use changed nothing the index holds
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE chatbot_knowledge_base SET answer = :a WHERE id = :id"),
            {"a": first["answer"] + " (Revised.)", "id": knowledge.grace_en},
        )
    second = ask(api, plain, world.b.holder_user, **question).json()
    assert second["answer"].endswith("(Revised.)")
    assert chatbot.INDEXES.builds == builds + 1


def test_the_counting_function_refuses_another_tenants_entry(
    owner_engine: Engine, world: World, knowledge: Knowledge
) -> None:
    outsider = Principal(
        user_id=world.b.holder_user,
        role=UserRole.POLICYHOLDER,
        session_id=uuid.uuid4(),
        tenant_ids=(world.b.provider_id,),
    )
    before = usage(owner_engine, knowledge.tenant_a)
    with scoped_session(owner_engine, outsider) as session:
        assert chatbot.count_use(session, knowledge.tenant_a) is None
        assert chatbot.count_use(session, knowledge.tenant_b) is not None
    assert usage(owner_engine, knowledge.tenant_a) == before


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"question": ""}, 422),
        ({"question": "   "}, 422),
        ({"question": "x" * 1001}, 422),
        ({"question": "premium", "language": "Hindi!"}, 422),
        ({"question": "premium", "extra": 1}, 422),
    ],
)
def test_invalid_questions_are_422(
    api: Api, world: World, plain: str, body: dict, status: int
) -> None:
    answer = httpx.post(
        f"{plain}/v1/chat",
        json=body,
        headers={"Authorization": f"Bearer {api.token(world.a.holder_user)}"},
    )
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"


def test_signing_in_is_required(plain: str) -> None:
    assert httpx.post(f"{plain}/v1/chat", json={"question": "premium"}).status_code == 401


def test_with_a_language_model_the_answer_is_grounded_in_the_entries_found(
    api: Api, world: World, knowledge: Knowledge
) -> None:
    reply = "आप ऐप में पॉलिसी खोलकर यूपीआई से प्रीमियम भर सकते हैं।"
    with fake_llm(reply=reply) as llm:
        settings = api.settings.model_copy(update=llm_settings(llm.base_url))
        with live_server(create_app(settings)) as base, captured_logs("api.llm") as logs:
            before = usage(api.engine, knowledge.pay_en)
            answer = ask(api, base, knowledge.hindi_holder, question="premium kaise bharu")
    body = answer.json()
    assert body["source"] == "llm"
    assert body["answer"] == reply
    assert body["entry_id"] == str(knowledge.pay_en)  # found among the English entries
    assert body["language"] == "hi"  # and the model told to answer in Hindi
    assert usage(api.engine, knowledge.pay_en) == before + 1
    (request,) = llm.requests
    assert request["authorization"] == "Bearer test"
    assert request["body"]["model"] == "test-model"
    prompt = llm.prompt()
    assert "How do I pay my premium?" in prompt and "tap Pay premium" in prompt
    assert "premium kaise bharu" in prompt and "Hindi" in prompt
    assert "Sunita" not in prompt and "Verma" not in prompt and "TENA-C-HI" not in prompt
    assert any(getattr(r, "total_tokens", None) == 366 for r in logs)


def test_when_the_language_model_is_down_the_entry_answers(
    api: Api, world: World, knowledge: Knowledge
) -> None:
    settings = api.settings.model_copy(
        update=llm_settings(closed_port_url(), llm_timeout_seconds=1.0, llm_max_retries=1)
    )
    with live_server(create_app(settings)) as base:
        body = ask(api, base, world.a.holder_user, question="pay premium by upi", language="en")
    assert body.json()["source"] == "knowledge_base"
    assert body.json()["entry_id"] == str(knowledge.pay_en)
