"""`POST /v1/chat`: the help chatbot, answering from the knowledge base (issue 8).

One transaction under the caller's row-level security (`api.db.scoped_session`: the shared
entries and those of the caller's insurers) finds the entries (`api.chatbot.retrieve`) and
counts the use of the one answered from; it commits *before* the language model is asked, so no
database connection waits on a model. Then, when a model is configured, it rewrites the answer
from the retrieved entries only (the prompt holds those entries and the question: nothing about
the user); when none is configured or it fails, the best entry's answer is returned as stored.
When no entry is close enough, the chatbot says so and points to the agent (`source`
"fallback"), rather than answer with an unrelated entry.

Any signed-in role may ask (policyholders mostly). POST because a question can be long and is
not for URLs and their logs; it creates nothing, so it takes no `Idempotency-Key` (a retried
question counts one more use, which is what happened).
"""

from __future__ import annotations

import uuid
from typing import Literal

from anyio import from_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.chatbot import Match, Retrieval, base_language, count_use, retrieve
from api.db import scoped_session
from api.deps import EnginesDep, SettingsDep
from api.llm import LlmConfig, complete
from api.problems import problem_responses
from api.ratelimit import RateLimit, spend_llm_call
from api.schemas.formats import Language
from api.security.deps import CurrentPrincipal
from api.security.tokens import Principal
from warehouse.operational.models import User

router = APIRouter(prefix="/v1", tags=["chatbot"])
CHAT_LIMIT = RateLimit("chat", lambda settings: settings.chat_rate_limit_per_minute)

LANGUAGE_NAMES = {
    "en": "English",
    "hi": "Hindi",
    "bn": "Bengali",
    "te": "Telugu",
    "mr": "Marathi",
    "ta": "Tamil",
    "gu": "Gujarati",
    "kn": "Kannada",
    "ml": "Malayalam",
    "pa": "Punjabi",
    "or": "Odia",
    "as": "Assamese",
    "ur": "Urdu",
}
NOT_FOUND_ANSWERS = {
    "en": "Sorry, I could not find an answer to that in our help articles. Please ask your "
    "insurance agent, who can help with your policy.",
    "hi": "माफ़ कीजिए, इस सवाल का जवाब हमारे सहायता लेखों में नहीं मिला। कृपया अपने बीमा एजेंट "
    "से पूछें, वे आपकी पॉलिसी में आपकी मदद कर सकते हैं।",
}


class ChatQuestion(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": "प्रीमियम कैसे भरें?", "language": "hi"}]},
    )

    question: str = Field(
        min_length=1,
        max_length=1000,
        pattern=r"^[^\x00]*[^\x00\s][^\x00]*$",
        description="the user's question, in any script (no NUL characters)",
    )
    language: Language | None = Field(
        None,
        description="language to answer in (ISO 639-1, e.g. en, hi); default the user's "
        "preferred language",
    )


class ChatAnswer(BaseModel):
    answer: str
    source: Literal["llm", "knowledge_base", "fallback"] = Field(
        description="`llm`: written by the language model from the entries found; "
        "`knowledge_base`: the best entry's answer as stored; `fallback`: no entry was close "
        "enough, so the chatbot says so and points to the agent"
    )
    entry_id: uuid.UUID | None = Field(description="the best entry found; null for fallback")
    question_matched: str | None = Field(description="that entry's question")
    score: float = Field(ge=0, le=1, description="its similarity to the question (0 to 1)")
    language: str = Field(description="the language of `answer`")


def _grounded_messages(question: str, matches: list[Match], language: str) -> list[dict[str, str]]:
    """The prompt: instructions, the retrieved entries and the question; nothing else."""
    name = LANGUAGE_NAMES.get(language, language)
    system = (
        "You are the help assistant of an insurance app in India. Answer the customer's "
        "question using only the knowledge-base entries given. If they do not answer it, say "
        "that you do not know and suggest asking their insurance agent. Do not add facts, "
        f"figures or advice that are not in the entries. Reply in {name}, in at most three "
        "short sentences of plain text."
    )
    entries = "\n\n".join(
        f"[{i}] Question: {m.entry.question}\nAnswer: {m.entry.answer}"
        for i, m in enumerate(matches, 1)
    )
    user = f"Knowledge-base entries:\n\n{entries}\n\nCustomer's question: {question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _preferred_language(session: Session, principal: Principal) -> str:
    preferred = session.scalar(select(User.language_preference).where(User.id == principal.user_id))
    return preferred or "en"


@router.post(
    "/chat",
    response_model=ChatAnswer,
    summary="Ask the help chatbot",
    description="Finds the knowledge-base entries closest to the question (the caller's "
    "insurers' and the shared ones; in the asked language first, then in English) and answers "
    "from them: rewritten by the configured language model, which sees only those entries and "
    "the question, or the best entry's answer as stored. When nothing is close enough the "
    "answer says so and points to the agent (`source: fallback`). Counts a use of the entry.",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "answer": "Open the policy, tap Pay premium and choose UPI, card or net "
                        "banking.",
                        "source": "knowledge_base",
                        "entry_id": "5b3f8f0e-2a4c-4d1b-9e7a-1c2d3e4f5a6b",
                        "question_matched": "How do I pay my premium?",
                        "score": 0.71,
                        "language": "en",
                    }
                }
            }
        },
        **problem_responses(
            401,
            422,
            explained={
                429: (
                    "Over the caller's questions a minute, or the insurer's language-model "
                    "answers of the day.",
                    "more than 20 requests a minute (chat); retry in 31 s",
                )
            },
        ),
    },
    dependencies=[Depends(CHAT_LIMIT)],
)
def chat(
    request: Request,
    body: ChatQuestion,
    principal: CurrentPrincipal,
    engines: EnginesDep,
    settings: SettingsDep,
) -> ChatAnswer:
    with scoped_session(engines.operational, principal) as session:
        asked = base_language(body.language or _preferred_language(session, principal))
        found: Retrieval = retrieve(session, principal, body.question, asked)
        if found.matches:
            count_use(session, found.matches[0].entry.id)
    if not found.matches:
        language = asked if asked in NOT_FOUND_ANSWERS else "en"
        return ChatAnswer(
            answer=NOT_FOUND_ANSWERS[language],
            source="fallback",
            entry_id=None,
            question_matched=None,
            score=round(found.best_score, 4),
            language=language,
        )
    best = found.matches[0]
    llm = LlmConfig.from_settings(settings)
    if llm is not None:
        from_thread.run(spend_llm_call, request, principal.tenant_ids)
    written = complete(
        llm,
        _grounded_messages(body.question, found.matches, asked),
        purpose="chat",
        max_tokens=250,
    )
    return ChatAnswer(
        answer=written.text if written else best.entry.answer,
        source="llm" if written else "knowledge_base",
        entry_id=best.entry.id,
        question_matched=best.entry.question,
        score=round(min(best.score, 1.0), 4),
        language=asked if written else found.language,
    )
