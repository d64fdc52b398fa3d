"""One client for any OpenAI-compatible chat-completions server (DESIGN §4: `OPENAI_BASE_URL`,
`OPENAI_API_KEY`, `MITRA_LLM_MODEL`), shared by the agent summary and the chatbot.

Design choices, and why:

* **Never raises.** `complete` returns None when no server is configured or every attempt failed;
  each caller then answers from its deterministic fallback (a template, the best knowledge-base
  entry). A language model is a nicety on top of answers that already exist, so its outage must
  never become an API error.
* **Our own retry loop, the SDK's switched off** (`max_retries=0`). The SDK honours a server's
  `Retry-After` for up to two minutes and backs off for up to 8 s, so the worst wait would not
  follow from our settings. Here each attempt is bounded by `timeout` and the pause between
  attempts by `RETRY_PAUSE_MAX`, so a request waits at most about
  `timeout x (retries + 1) + retries x RETRY_PAUSE_MAX`. Only what a retry can cure is retried:
  timeouts, refused connections, 408/409/429 and 5xx; a 4xx (bad key, unknown model) is not.
  (`timeout` is httpx's per operation: connect, write, and each read. A server that trickles
  bytes forever could outlast it; the servers we configure answer in one body.)
* **Synchronous**, called from FastAPI's threadpool like the routes' database work. One client
  per configuration is kept (`functools.lru_cache`), so its connection pool is reused.
* **Token use is logged** at INFO on the `api.llm` logger with structured `extra=` fields
  (`llm_purpose`, `llm_model`, `prompt_tokens`, `completion_tokens`, `total_tokens`,
  `llm_attempts`, `llm_seconds`); the prompt and the answer are never logged.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import openai

from warehouse.settings import Settings

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers (vLLM, llama.cpp, Ollama) need no key, but the SDK insists on one.
NO_KEY = "not-needed"
RETRY_PAUSE_MAX = 0.5  # seconds between attempts, at most (with jitter)
_RETRYABLE_STATUSES = frozenset({408, 409, 429})

_log = logging.getLogger("api.llm")


@dataclass(frozen=True)
class LlmConfig:
    """Where and how to ask: built from the settings, hashable (it keys the client cache)."""

    base_url: str
    api_key: str = field(repr=False)
    model: str
    timeout: float
    max_retries: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmConfig | None:
        """The configured server, or None when neither a base URL nor a key is set."""
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        if not settings.openai_base_url and not key:
            return None
        return cls(
            base_url=settings.openai_base_url or OPENAI_DEFAULT_BASE_URL,
            api_key=key or NO_KEY,
            model=settings.llm_model,
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
        )


@dataclass(frozen=True)
class Usage:
    """Tokens one completion cost, as the server counted them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Completion:
    """A language model's answer: its text, the model that wrote it, what it cost."""

    text: str
    model: str
    usage: Usage | None


@lru_cache(maxsize=8)
def _client(config: LlmConfig) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=config.base_url,
        api_key=config.api_key,
        timeout=config.timeout,
        max_retries=0,  # ours, bounded: see the module docstring
    )


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRYABLE_STATUSES or exc.status_code >= 500
    return False


def _usage(response: Any) -> Usage | None:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    try:
        return Usage(
            prompt_tokens=int(usage.prompt_tokens or 0),
            completion_tokens=int(usage.completion_tokens or 0),
            total_tokens=int(usage.total_tokens or 0),
        )
    except (TypeError, ValueError, AttributeError):
        return None


def _text(response: Any) -> str:
    """The first choice's text, stripped; empty when the answer has none."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return ""
    return content.strip() if isinstance(content, str) else ""


def complete(
    config: LlmConfig | None,
    messages: list[dict[str, str]],
    *,
    purpose: str,
    max_tokens: int = 400,
    temperature: float = 0.2,
) -> Completion | None:
    """Ask the configured server; None when there is none or every attempt failed (logged)."""
    if config is None:
        return None
    client = _client(config)
    started = time.monotonic()
    for attempt in range(1, config.max_retries + 2):
        try:
            response = client.chat.completions.create(
                model=config.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
            )
        except Exception as exc:  # any failure means "use the fallback"
            if attempt <= config.max_retries and _retryable(exc):
                time.sleep(RETRY_PAUSE_MAX * (0.5 + random.random() / 2))  # noqa: S311
                continue
            _log.warning(
                "language model request failed; answering without it",
                extra={
                    "llm_purpose": purpose,
                    "llm_model": config.model,
                    "llm_attempts": attempt,
                    "llm_error": type(exc).__name__,
                    "llm_seconds": round(time.monotonic() - started, 3),
                },
            )
            return None
        text = _text(response)
        usage = _usage(response)
        model = getattr(response, "model", None) or config.model
        _log.info(
            "language model tokens used",
            extra={
                "llm_purpose": purpose,
                "llm_model": model,
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
                "total_tokens": usage.total_tokens if usage else None,
                "llm_attempts": attempt,
                "llm_seconds": round(time.monotonic() - started, 3),
            },
        )
        if not text:
            _log.warning(
                "language model answered with no text; answering without it",
                extra={"llm_purpose": purpose, "llm_model": model},
            )
            return None
        return Completion(text=text, model=str(model), usage=usage)
    return None  # pragma: no cover - the loop always returns
