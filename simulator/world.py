"""The simulated world: insurers, agents, policyholders, policies, videos and templates.

`build_world(config)` is deterministic in `config.seed` and the tier. Every table is a polars
DataFrame with string UUID keys; `World.affinity` gives the planted true content affinities.

Columns (generators of app events and WhatsApp logs rely on these names):

- providers: provider_id, code, name, provider_type
- agents: agent_id, user_id, provider_id, agent_code, full_name, phone, language, state, city,
  pincode, territory, whatsapp_business_number, whatsapp_phone_number_id, productivity, quality,
  joined_on
- policyholders: policyholder_id, user_id, agent_id, provider_id, customer_code, full_name, phone,
  whatsapp_user_id (nullable), contact_shares_phone, language, state, city, pincode, gender,
  date_of_birth, annual_income, engagement, platform, whatsapp_opt_in
- policies: policy_id, policy_number, policyholder_id, agent_id, provider_id, policy_type,
  plan_name, premium_mode, premium_amount, sum_assured, policy_term_years,
  premium_paying_term_years, issue_date, maturity_date, nominee_details (JSON text)
- videos: video_id, provider_id, title, category, language, duration_seconds, policy_types
- templates: template_id, provider_id, name, language, category, body, buttons
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import numpy as np
import orjson
import polars as pl

from simulator.config import SimulationConfig
from simulator.names import (
    FIRST_NAMES_FEMALE,
    FIRST_NAMES_MALE,
    LANGUAGES,
    LAST_NAMES,
    PROVIDER_WEIGHTS,
    PROVIDERS,
    STATES,
    VIDEO_CATEGORIES,
)
from simulator.rng import stream, uuids

# Premium modes: share of new policies, and payments a year.
MODE_SHARES = {
    "monthly": 0.30,
    "quarterly": 0.15,
    "half_yearly": 0.10,
    "annual": 0.35,
    "single": 0.10,
}
PAYMENTS_PER_YEAR = {"monthly": 12, "quarterly": 4, "half_yearly": 2, "annual": 1, "single": 0}
LIFE_PRODUCTS = {"endowment": 0.30, "term": 0.25, "money_back": 0.15, "ulip": 0.15,
                 "whole_life": 0.10, "pension": 0.05}  # fmt: skip
PLAN_NAMES = {
    "endowment": "Jeevan Labh", "term": "Tech Term", "money_back": "Bima Bachat",
    "ulip": "Wealth Plus", "whole_life": "Jeevan Umang", "pension": "Saral Pension",
    "health": "Family Health Optima",
}  # fmt: skip
# Heavy-tailed agent productivity: lognormal weights with sigma 1.5 put about two thirds of new
# business with the top fifth of agents (the 80/20 the product plan describes).
PRODUCTIVITY_SIGMA = 1.5
# Tax-saving season: policies sold January-March at twice the rate of other months.
SEASON = {1: 2.0, 2: 2.0, 3: 2.2}
AFFINITY_FACTORS = 8


@dataclass
class World:
    config: SimulationConfig
    providers: pl.DataFrame
    agents: pl.DataFrame
    policyholders: pl.DataFrame
    policies: pl.DataFrame
    videos: pl.DataFrame
    templates: pl.DataFrame
    knowledge_base: pl.DataFrame
    holder_factors: np.ndarray
    video_factors: np.ndarray
    video_bias: np.ndarray

    @cached_property
    def _holder_languages(self) -> np.ndarray:
        return self.policyholders["language"].to_numpy()

    @cached_property
    def _video_languages(self) -> np.ndarray:
        return self.videos["language"].to_numpy()

    def affinity(self, holder_rows: np.ndarray) -> np.ndarray:
        """True affinity in [0, 1] of policyholders (rows) for every video (columns).

        A logistic of a latent-factor score plus the video's popularity, a bonus when the video
        is in the policyholder's language (or English) and a penalty otherwise: what the
        recommender has to recover from views.
        """
        holder_rows = np.asarray(holder_rows)
        score = self.holder_factors[holder_rows] @ self.video_factors.T + self.video_bias
        holder_lang = self._holder_languages[holder_rows][:, None]
        video_lang = self._video_languages[None, :]
        score = score + np.where(
            video_lang == holder_lang, 1.0, np.where(video_lang == "en", 0.0, -2.5)
        )
        return 1.0 / (1.0 + np.exp(-score))


def _phones(rng: np.random.Generator, n: int, taken: set[int]) -> list[str]:
    """Unique Indian mobile numbers (+91, ten digits starting 6-9)."""
    out: list[str] = []
    while len(out) < n:
        for number in rng.integers(6_000_000_000, 10_000_000_000, size=n - len(out)):
            if int(number) not in taken:
                taken.add(int(number))
                out.append(f"+91{number}")
    return out


def _names(rng: np.random.Generator, genders: np.ndarray) -> list[str]:
    female = rng.choice(FIRST_NAMES_FEMALE, size=len(genders))
    male = rng.choice(FIRST_NAMES_MALE, size=len(genders))
    last = rng.choice(LAST_NAMES, size=len(genders))
    return [
        f"{f if g == 'female' else m} {surname}"
        for f, m, g, surname in zip(female, male, genders, last, strict=True)
    ]


def _places(rng: np.random.Generator, n: int) -> tuple[list[str], list[str], list[str], list[str]]:
    names = list(STATES)
    weights = np.array([STATES[s][2] for s in names])
    picks = rng.choice(len(names), size=n, p=weights / weights.sum())
    states, cities, pincodes, languages = [], [], [], []
    city_picks = rng.integers(0, 1_000_000, size=n)
    suffixes = rng.integers(0, 1000, size=n)
    for pick, city_pick, suffix in zip(picks, city_picks, suffixes, strict=True):
        state = names[pick]
        language, city_list, _ = STATES[state]
        city, prefix = city_list[city_pick % len(city_list)]
        states.append(state)
        cities.append(city)
        pincodes.append(f"{prefix}{suffix:03d}")
        languages.append(language)
    return states, cities, pincodes, languages


def _build_providers(config: SimulationConfig) -> pl.DataFrame:
    rng = stream(config.seed, "providers")
    chosen = PROVIDERS[: config.size.providers]
    return pl.DataFrame(
        {
            "provider_id": uuids(rng, len(chosen)),
            "code": [c for c, _, _ in chosen],
            "name": [n for _, n, _ in chosen],
            "provider_type": [t for _, _, t in chosen],
        }
    )


def _build_agents(
    config: SimulationConfig, providers: pl.DataFrame, phones: set[int]
) -> pl.DataFrame:
    rng = stream(config.seed, "agents")
    n = config.size.agents
    weights = np.array(PROVIDER_WEIGHTS[: providers.height])
    provider_rows = rng.choice(providers.height, size=n, p=weights / weights.sum())
    genders = rng.choice(["female", "male"], size=n, p=[0.35, 0.65])
    states, cities, pincodes, languages = _places(rng, n)
    codes = providers["code"].to_list()
    business_numbers = _phones(rng, n, phones)
    joined_days = rng.integers(0, 365 * 12, size=n)
    return pl.DataFrame(
        {
            "agent_id": uuids(rng, n),
            "user_id": uuids(rng, n),
            "provider_id": [providers["provider_id"][int(r)] for r in provider_rows],
            "agent_code": [f"{codes[r][:3]}-{i + 1:06d}" for i, r in enumerate(provider_rows)],
            "full_name": _names(rng, genders),
            "gender": genders.tolist(),
            "phone": _phones(rng, n, phones),
            "language": languages,
            "state": states,
            "city": cities,
            "pincode": pincodes,
            "territory": [
                f"{c} {z}"
                for c, z in zip(
                    cities,
                    rng.choice(["North", "South", "East", "West", "Central"], size=n),
                    strict=True,
                )
            ],
            "whatsapp_business_number": business_numbers,
            "whatsapp_phone_number_id": [str(x) for x in rng.integers(10**14, 10**15, size=n)],
            "productivity": rng.lognormal(0.0, PRODUCTIVITY_SIGMA, size=n),
            "quality": rng.normal(0.0, 0.4, size=n),
            "joined_on": [config.history_start - timedelta(days=int(d)) for d in joined_days],
        }
    )


def _build_policyholders(
    config: SimulationConfig, agents: pl.DataFrame, phones: set[int]
) -> pl.DataFrame:
    rng = stream(config.seed, "policyholders")
    n = config.size.policyholders
    productivity = agents["productivity"].to_numpy()
    agent_rows = rng.choice(agents.height, size=n, p=productivity / productivity.sum())
    genders = rng.choice(["female", "male"], size=n, p=[0.42, 0.58])
    # Mostly the agent's own state and language; some customers elsewhere or preferring English.
    states, cities, pincodes, languages = _places(rng, n)
    agent_state = agents["state"].to_numpy()[agent_rows]
    agent_city = agents["city"].to_numpy()[agent_rows]
    agent_lang = agents["language"].to_numpy()[agent_rows]
    local = rng.random(n) < 0.85
    states = np.where(local, agent_state, states)
    cities = np.where(local, agent_city, cities)
    languages = np.where(local, agent_lang, languages)
    languages = np.where(rng.random(n) < 0.22, "en", languages)
    has_bsuid = rng.random(n) < 0.25
    shares_phone = ~has_bsuid | (rng.random(n) < 0.5)
    birth = [date(1955, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 365 * 47, size=n)]
    return pl.DataFrame(
        {
            "policyholder_id": uuids(rng, n),
            "user_id": uuids(rng, n),
            "agent_id": agents["agent_id"].to_numpy()[agent_rows],
            "provider_id": agents["provider_id"].to_numpy()[agent_rows],
            "customer_code": [f"C{i + 1:08d}" for i in range(n)],
            "full_name": _names(rng, genders),
            "phone": _phones(rng, n, phones),
            "whatsapp_user_id": [
                f"IN.{x}" if b else None
                for x, b in zip(rng.integers(10**14, 10**15, size=n), has_bsuid, strict=True)
            ],
            "contact_shares_phone": shares_phone,
            "language": languages,
            "state": states,
            "city": cities,
            "pincode": pincodes,
            "gender": genders,
            "date_of_birth": birth,
            "annual_income": np.round(rng.lognormal(np.log(500_000), 0.7, size=n), -3),
            "engagement": rng.beta(2.0, 3.0, size=n),
            "platform": rng.choice(["android", "ios"], size=n, p=[0.88, 0.12]),
            "whatsapp_opt_in": rng.random(n) < 0.8,
        }
    )


def _issue_dates(rng: np.random.Generator, config: SimulationConfig, n: int) -> np.ndarray:
    """Issue days from the start of history to the window's end: seasonal, growing 8% a year."""
    days = (config.end - config.history_start).days
    offsets = np.arange(days)
    day_dates = [config.history_start + timedelta(days=int(d)) for d in offsets]
    weights = np.array(
        [SEASON.get(d.month, 1.0) * 1.08 ** (d.year - config.history_start.year) for d in day_dates]
    )
    picks = rng.choice(days, size=n, p=weights / weights.sum())
    return np.array(config.history_start, dtype="datetime64[D]") + picks


def _build_policies(
    config: SimulationConfig, holders: pl.DataFrame, providers: pl.DataFrame
) -> pl.DataFrame:
    rng = stream(config.seed, "policies")
    per_holder = 1 + np.minimum(rng.poisson(0.45, size=holders.height), 3)
    rows = np.repeat(np.arange(holders.height), per_holder)
    n = len(rows)
    provider_type = dict(zip(providers["provider_id"], providers["provider_type"], strict=True))
    holder_provider = holders["provider_id"].to_numpy()[rows]
    is_health = np.array([provider_type[p] == "health" for p in holder_provider])
    products = list(LIFE_PRODUCTS)
    life_type = rng.choice(products, size=n, p=np.array(list(LIFE_PRODUCTS.values())))
    policy_type = np.where(is_health, "health", life_type)
    modes = list(MODE_SHARES)
    mode = rng.choice(modes, size=n, p=np.array(list(MODE_SHARES.values())))
    mode = np.where(is_health, np.where(rng.random(n) < 0.8, "annual", "monthly"), mode)
    income = holders["annual_income"].to_numpy()[rows]
    annual_premium = np.clip(income * rng.lognormal(np.log(0.05), 0.5, size=n), 3_000, 2_000_000)
    per_year = np.array([PAYMENTS_PER_YEAR[m] for m in mode])
    # A single premium is about six years of premium paid at once.
    premium = np.where(per_year > 0, annual_premium / np.maximum(per_year, 1), annual_premium * 6)
    premium = np.round(premium, 0)
    multiple = np.select(
        [policy_type == "term", policy_type == "health"],
        [rng.uniform(80, 200, size=n), rng.uniform(15, 40, size=n)],
        rng.uniform(8, 20, size=n),
    )
    sum_assured = np.round(annual_premium * multiple, -3)
    term = rng.choice([10, 12, 15, 16, 20, 21, 25, 30], size=n)
    term = np.where(is_health, 1, term)
    paying_term = np.where(
        mode == "single", 1, np.where(rng.random(n) < 0.3, np.maximum(term - 5, 1), term)
    )
    issue = _issue_dates(rng, config, n)
    # Health cover renews each year: model it as a long-running annual contract.
    term = np.where(is_health, 30, term)
    paying_term = np.where(is_health, 30, paying_term)
    maturity = issue + (term * 365.25).astype("timedelta64[D]")
    nominees = _nominees(stream(config.seed, "nominees"), holders["full_name"].to_numpy()[rows])
    return pl.DataFrame(
        {
            "policy_id": uuids(rng, n),
            "policy_number": [f"{i + 1:010d}" for i in range(n)],
            "policyholder_id": holders["policyholder_id"].to_numpy()[rows],
            "holder_row": rows,
            "agent_id": holders["agent_id"].to_numpy()[rows],
            "provider_id": holder_provider,
            "policy_type": policy_type,
            "plan_name": [PLAN_NAMES[t] for t in policy_type],
            "premium_mode": mode,
            "premium_amount": premium,
            "sum_assured": sum_assured,
            "policy_term_years": term,
            "premium_paying_term_years": paying_term,
            "issue_date": issue,
            "maturity_date": maturity,
            "nominee_details": nominees,
        }
    ).sort("issue_date", "policy_id")


NOMINEE_RELATIONS = ["spouse", "son", "daughter", "mother", "father", "brother", "sister"]
NOMINEE_RELATION_SHARES = [0.5, 0.15, 0.12, 0.1, 0.06, 0.04, 0.03]


def _nominees(rng: np.random.Generator, holder_names: np.ndarray) -> list[str]:
    """Nominee details as the JSON array the app stores: one nominee, sometimes two sharing."""
    n = len(holder_names)
    relation = rng.choice(NOMINEE_RELATIONS, size=(n, 2), p=NOMINEE_RELATION_SHARES)
    first = rng.choice(FIRST_NAMES_FEMALE + FIRST_NAMES_MALE, size=(n, 2))
    two = rng.random(n) < 0.15
    out = []
    for i in range(n):
        surname = str(holder_names[i]).rsplit(" ", 1)[-1]
        people = [(first[i, 0], relation[i, 0])] + (
            [(first[i, 1], relation[i, 1])] if two[i] else []
        )
        share = 100 // len(people)
        out.append(
            orjson.dumps(
                [
                    {"name": f"{f} {surname}", "relationship": r, "share_percent": share}
                    for f, r in people
                ]
            ).decode()
        )
    return out


def _build_videos(config: SimulationConfig, providers: pl.DataFrame) -> pl.DataFrame:
    rng = stream(config.seed, "videos")
    n = config.size.videos
    language = rng.choice(LANGUAGES, size=n, p=np.array([0.3] + [0.7 / 9] * 9))
    category = rng.choice(VIDEO_CATEGORIES, size=n)
    product_sets = {
        "term_basics": ["term"],
        "tax_saving": ["endowment", "ulip", "pension"],
        "claims": ["term", "health"],
        "retirement": ["pension", "whole_life"],
        "child_education": ["endowment", "money_back"],
        "health_cover": ["health"],
        "ulip_explained": ["ulip"],
        "premium_payment": [],
        "policy_revival": ["endowment", "money_back", "whole_life"],
        "nominee_update": [],
    }
    return pl.DataFrame(
        {
            "video_id": uuids(rng, n),
            "provider_id": rng.choice(providers["provider_id"].to_numpy(), size=n),
            "title": [f"{c.replace('_', ' ').title()} #{i + 1}" for i, c in enumerate(category)],
            "category": category,
            "language": language,
            "duration_seconds": rng.integers(45, 600, size=n),
            "policy_types": [product_sets[c] for c in category],
        },
        schema_overrides={"policy_types": pl.List(pl.String)},
    )


TEMPLATES = [  # name, category, body, quick-reply buttons
    (
        "premium_due_reminder",
        "utility",
        "Namaste {{1}}, the premium of {{2}} for policy {{3}} is due on {{4}}.",
        ["Pay now", "Call me"],
    ),
    (
        "grace_period_alert",
        "utility",
        "{{1}}, your policy {{2}} is in its grace period until {{3}}. Pay to keep your cover.",
        ["Pay now", "Remind me later"],
    ),
    (
        "policy_revival_offer",
        "marketing",
        "{{1}}, revive policy {{2}} now and restore your cover.",
        ["Interested", "Not now"],
    ),
    (
        "new_video_share",
        "marketing",
        "{{1}}, watch this short video: {{2}}",
        ["Watch", "Stop updates"],
    ),
    ("login_otp", "authentication", "{{1}} is your Agent Mitra verification code.", []),
]


def _build_templates(config: SimulationConfig, providers: pl.DataFrame) -> pl.DataFrame:
    rng = stream(config.seed, "templates")
    rows = [
        (provider_id, name, language, category, body, buttons)
        for provider_id in providers["provider_id"]
        for name, category, body, buttons in TEMPLATES
        for language in ("en", "hi")
    ]
    return pl.DataFrame(
        {
            "template_id": uuids(rng, len(rows)),
            "provider_id": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "language": [r[2] for r in rows],
            "category": [r[3] for r in rows],
            "body": [r[4] for r in rows],
            "buttons": [r[5] for r in rows],
        },
        schema_overrides={"buttons": pl.List(pl.String)},
    )


KNOWLEDGE_BASE = [  # category, question, answer, keywords
    (
        "payments",
        "How do I pay my premium?",
        "Open the policy, tap Pay premium and choose UPI, card or net banking.",
        ["pay", "premium", "upi"],
    ),
    (
        "grace",
        "What is the grace period?",
        "15 days for monthly premiums and 30 days for other modes, from the due date.",
        ["grace", "late", "due"],
    ),
    (
        "revival",
        "How can I revive a lapsed policy?",
        "Pay the unpaid premiums with interest within the revival period; your agent can help.",
        ["revive", "lapsed"],
    ),
    (
        "tax",
        "Which premiums save tax?",
        "Life insurance premiums qualify under section 80C and health premiums under 80D"
        " of the old regime.",
        ["tax", "80c", "80d"],
    ),
    (
        "claims",
        "How do I make a claim?",
        "Tell your agent or the insurer's claims desk; keep the policy number and documents ready.",
        ["claim", "death", "hospital"],
    ),
    (
        "nominee",
        "How do I change my nominee?",
        "Submit the nomination form through your agent or the insurer's branch.",
        ["nominee", "nomination"],
    ),
]


def _build_knowledge_base(config: SimulationConfig) -> pl.DataFrame:
    rng = stream(config.seed, "knowledge_base")
    return pl.DataFrame(
        {
            "kb_id": uuids(rng, len(KNOWLEDGE_BASE)),
            "category": [k[0] for k in KNOWLEDGE_BASE],
            "question": [k[1] for k in KNOWLEDGE_BASE],
            "answer": [k[2] for k in KNOWLEDGE_BASE],
            "keywords": [k[3] for k in KNOWLEDGE_BASE],
            "language": ["en"] * len(KNOWLEDGE_BASE),
        },
        schema_overrides={"keywords": pl.List(pl.String)},
    )


def build_world(config: SimulationConfig) -> World:
    """Everything but the daily activity, from the seed and the tier."""
    phones: set[int] = set()
    providers = _build_providers(config)
    agents = _build_agents(config, providers, phones)
    holders = _build_policyholders(config, agents, phones)
    policies = _build_policies(config, holders, providers)
    videos = _build_videos(config, providers)
    rng = stream(config.seed, "affinity")
    return World(
        config=config,
        providers=providers,
        agents=agents,
        policyholders=holders,
        policies=policies,
        videos=videos,
        templates=_build_templates(config, providers),
        knowledge_base=_build_knowledge_base(config),
        holder_factors=rng.normal(0, 0.8, size=(holders.height, AFFINITY_FACTORS)),
        video_factors=rng.normal(0, 0.8, size=(videos.height, AFFINITY_FACTORS)),
        video_bias=rng.normal(-1.5, 0.7, size=videos.height),
    )
