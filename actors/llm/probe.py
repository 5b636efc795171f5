"""Does the configured server know our models and accept our key? (start-up and `vidscribe doctor`)

`/v1/models` answers both where the server has it: a 401 there is a refused key, and a
configured model missing from the list is a typo that OpenAI, DeepSeek and DashScope
answer with 400/404 on every request, while llama.cpp silently answers with the model
it loaded. Where there is no list, one tiny request per model tells the same. Some
servers (vLLM, LM Studio, OpenRouter) state each model's context window in the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import openai

PROBE_PROMPT = "Answer with one word: ok"
PROBE_MAX_TOKENS = 16  # the real calls send an output limit too: a server refusing it fails here
_CONTEXT_FIELDS = ("max_model_len", "context_length", "max_context_length", "context_window")


@dataclass(frozen=True)
class Probe:
    """What the server said: `listed` is None when it has no models list."""

    listed: frozenset[str] | None
    missing: tuple[str, ...] = ()
    answered: tuple[str, ...] = ()
    contexts: dict[str, int] = field(default_factory=dict)


async def probe(client: openai.AsyncOpenAI, models: Sequence[str], *, ask: bool) -> Probe:
    """List the server's models; then, with `ask` or when there is no list, send each listed
    model one tiny request. Errors (a refused key, an unreachable server) are raised as the
    openai client raises them; no request goes to a model that is not listed."""
    wanted = list(dict.fromkeys(models))
    listed, contexts = await _listed(client)
    missing = tuple(model for model in wanted if listed is not None and model not in listed)
    answered: list[str] = []
    if not missing and (ask or listed is None):
        for model in wanted:
            await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": PROBE_PROMPT}], max_tokens=PROBE_MAX_TOKENS
            )
            answered.append(model)
    return Probe(listed, missing, tuple(answered), {m: n for m, n in contexts.items() if m in wanted})


async def _listed(client: openai.AsyncOpenAI) -> tuple[frozenset[str] | None, dict[str, int]]:
    try:
        page = await client.models.list()
    except (openai.AuthenticationError, openai.PermissionDeniedError):
        raise
    except openai.APIStatusError:
        return None, {}
    contexts = {}
    for model in page.data:
        extra = model.model_extra or {}
        for name in _CONTEXT_FIELDS:
            value = extra.get(name)
            if isinstance(value, int) and value > 0:
                contexts[model.id] = value
                break
    return frozenset(model.id for model in page.data), contexts
