"""The concrete models, apps and users of one traffic configuration, as lookup arrays.

Derived from the counts alone (not the seed), so runs with different seeds share one world
and a benchmark can compare them key by key. Beyond the catalogue, extra models are
fine-tuned variants of catalogue models and extra apps are further deployments of an
archetype; both keep their base's character with a deterministic tweak. The catalogue's
agents are apps too (after the plain ones), so incidents keyed by app reach agent traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from genai_apm.traffic.catalogue import (
    AGENTS,
    ARCHETYPES,
    MODELS,
    REGIONS,
    AppArchetype,
    ModelProfile,
)

PROVIDERS = ("aws.bedrock", "openai", "gcp.gemini")
CACHE_MODES = ("none", "read", "read_write")
# Zipf exponents: a few models, apps and users carry most of the traffic, as in real fleets.
MODEL_SKEW, APP_SKEW, USER_SKEW = 0.9, 0.8, 0.6
# Share of an app's calls that go to its primary model; the rest follow fleet popularity.
PRIMARY_MODEL_SHARE = 0.6
USERS_PER_TENANT = 40


def _zipf_cdf(n: int, skew: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** skew
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


def _tweak(i: int) -> float:
    """A deterministic factor in [0.85, 1.15] that makes variant i differ from its base."""
    return 0.85 + 0.03 * ((i * 37) % 11)


def _model(i: int) -> tuple[str, ModelProfile]:
    base = MODELS[i % len(MODELS)]
    if i < len(MODELS):
        return base.model_id, base
    return f"{base.model_id}-ft{i // len(MODELS):03d}", base


def _agent_app(i: int) -> tuple[str, AppArchetype]:
    agent = AGENTS[i]
    # agents answer tool results and short user turns; the sizes here are defaults that the
    # agent model overrides per call
    return agent.name, AppArchetype(
        agent.name, "agent", agent.system_prompt_tokens, 300, 0.6, 250, 0.5, 4096, 0.0, 0.85
    )


def _app(i: int) -> tuple[str, AppArchetype]:
    base = ARCHETYPES[i % len(ARCHETYPES)]
    if i < len(ARCHETYPES):
        return base.name, base
    return f"{base.name}-{i // len(ARCHETYPES) + 1}", base


@dataclass(frozen=True, eq=False)
class Population:
    model_ids: tuple[str, ...]
    providers: tuple[str, ...]
    app_ids: tuple[str, ...]  # the plain apps, then one per catalogue agent
    plain_apps: int
    features: tuple[str, ...]
    regions: tuple[str, ...]
    users: int
    # per model
    ttft_ms: np.ndarray
    prefill_ms_per_token: np.ndarray
    ms_per_token: np.ndarray
    sigma: np.ndarray
    cache_mode: np.ndarray  # index into CACHE_MODES
    reasoning: np.ndarray
    provider_index: np.ndarray  # index into PROVIDERS
    model_cdf: np.ndarray
    # per app
    system_prompt_tokens: np.ndarray
    content_log_median: np.ndarray
    content_sigma: np.ndarray
    output_log_median: np.ndarray
    output_sigma: np.ndarray
    max_output: np.ndarray
    streaming_share: np.ndarray
    cache_hit_rate: np.ndarray
    primary_model: np.ndarray
    app_cdf: np.ndarray
    # per user
    user_cdf: np.ndarray

    def agent_app(self, agent: int) -> int:
        return self.plain_apps + agent

    def user_index(self, user_id: str) -> int | None:
        prefix, _, number = user_id.partition("-")
        if prefix == "u" and number.isdigit() and int(number) < self.users:
            return int(number)
        return None

    def user_id(self, user: int) -> str:
        return f"u-{user}"

    def tenant_id(self, user: int) -> str:
        return f"t-{user % max(1, self.users // USERS_PER_TENANT)}"

    def draw_models(self, rng: np.random.Generator, app: np.ndarray) -> np.ndarray:
        fleet = np.searchsorted(self.model_cdf, rng.random(app.size), side="right")
        return np.where(rng.random(app.size) < PRIMARY_MODEL_SHARE, self.primary_model[app], fleet)

    def draw_apps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.searchsorted(self.app_cdf, rng.random(n), side="right")

    def draw_users(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.searchsorted(self.user_cdf, rng.random(n), side="right")


@lru_cache(maxsize=8)
def population(models: int, apps: int, users: int) -> Population:
    if min(models, apps, users) < 1:
        raise ValueError("models, apps and users must each be at least 1")
    model_rows = [_model(i) for i in range(models)]
    app_rows = [_app(i) for i in range(apps)] + [_agent_app(i) for i in range(len(AGENTS))]
    tweaks_m = np.array([_tweak(i) if i >= len(MODELS) else 1.0 for i in range(models)])
    tweaks_a = np.array(
        [_tweak(i) if len(ARCHETYPES) <= i < apps else 1.0 for i in range(len(app_rows))]
    )

    def per_model(attr: str) -> np.ndarray:
        return np.array([getattr(p, attr) for _, p in model_rows], dtype=float)

    def per_app(attr: str) -> np.ndarray:
        return np.array([getattr(a, attr) for _, a in app_rows], dtype=float)

    # spread primaries over the fleet so every model is some app's first choice
    primary = np.concatenate([np.arange(apps), 2 * np.arange(len(AGENTS))]) % models
    pop = Population(
        model_ids=tuple(m for m, _ in model_rows),
        providers=tuple(p.provider for _, p in model_rows),
        app_ids=tuple(a for a, _ in app_rows),
        plain_apps=apps,
        features=tuple(a.feature for _, a in app_rows),
        regions=tuple(REGIONS[i % len(REGIONS)] for i in range(len(app_rows))),
        users=users,
        ttft_ms=per_model("ttft_ms") * tweaks_m,
        prefill_ms_per_token=per_model("prefill_ms_per_1k") / 1000 * tweaks_m,
        ms_per_token=per_model("ms_per_token") * tweaks_m,
        sigma=per_model("sigma"),
        cache_mode=np.array([CACHE_MODES.index(p.cache) for _, p in model_rows]),
        reasoning=np.array([p.reasoning for _, p in model_rows]),
        provider_index=np.array([PROVIDERS.index(p.provider) for _, p in model_rows]),
        model_cdf=_zipf_cdf(models, MODEL_SKEW),
        system_prompt_tokens=per_app("system_prompt_tokens").astype(np.int64),
        content_log_median=np.log(per_app("content_median") * tweaks_a),
        content_sigma=per_app("content_sigma"),
        output_log_median=np.log(per_app("output_median") * tweaks_a),
        output_sigma=per_app("output_sigma"),
        max_output=per_app("max_output").astype(np.int64),
        streaming_share=per_app("streaming_share"),
        cache_hit_rate=per_app("cache_hit_rate"),
        primary_model=primary,
        app_cdf=_zipf_cdf(apps, APP_SKEW),
        user_cdf=_zipf_cdf(users, USER_SKEW),
    )
    for value in vars(pop).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False  # shared through the cache
    return pop
