"""Premiums due soon with their lapse risk, the customers most likely to lapse with what to do
about it, and the videos recommended to a policyholder: the model outputs (`ml.*`) beside the
marts, as of the latest scoring.

The names and phone numbers the agent needs to act are not in the warehouse (it holds only
tokens, DESIGN §5): they come from the operational database, through the caller's row-level
security scope, for the few customers of the answer.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from api.insights.access import AgentScope
from api.insights.values import plain, plain_row
from warehouse.operational.enums import WhatsAppTemplateStatus
from warehouse.operational.models import Policyholder, WhatsAppTemplate

HIGH, MEDIUM = "high", "medium"
CALL_WITHIN_DAYS = 7  # a high-risk premium whose grace ends this soon gets a call, not a message

_LATEST_SCORING = text("SELECT max(scored_for) FROM ml.lapse_scores WHERE agent_id = :agent")

_DUES = text(
    """
    SELECT s.policy_id, s.policyholder_id, s.installment_number, s.due_date, s.grace_end_date,
           p.policy_number, p.plan_name, p.premium_mode, p.premium_amount AS amount,
           s.lapse_probability, s.risk_band, s.reasons, s.model_version
    FROM ml.lapse_scores s
    JOIN marts.dim_policy p ON p.policy_id = s.policy_id
    WHERE s.agent_id = :agent AND s.scored_for = :scored_for
      AND s.due_date >= :scored_for AND s.due_date < :until
    ORDER BY s.due_date, s.lapse_probability DESC, s.policy_id
    """
)

_AT_RISK = text(
    """
    SELECT DISTINCT ON (s.policyholder_id)
           s.policyholder_id, s.policy_id, s.installment_number, s.due_date, s.grace_end_date,
           p.policy_number, p.premium_amount AS amount, s.lapse_probability, s.risk_band,
           s.reasons, s.model_version
    FROM ml.lapse_scores s
    JOIN marts.dim_policy p ON p.policy_id = s.policy_id
    WHERE s.agent_id = :agent AND s.scored_for = :scored_for
      AND s.risk_band IN ('high', 'medium')
    ORDER BY s.policyholder_id, s.lapse_probability DESC, s.due_date
    """
)

_SEND_NEXT = text(
    """
    SELECT r.policyholder_id, r.video_id, c.title, c.language, c.category, r.model_version
    FROM ml.content_recommendations r
    JOIN marts.dim_content c ON c.video_id = r.video_id
    WHERE r.list_name = 'send_next' AND r.rank = 1 AND r.policyholder_id = ANY(:holders)
      AND r.scored_for = (
          SELECT max(scored_for) FROM ml.content_recommendations
          WHERE list_name = 'send_next' AND scored_for <= :scored_for
      )
    """
)

_FOR_YOU = text(
    """
    SELECT r.rank, r.video_id, c.title, c.category, c.language, c.duration_seconds, r.score,
           r.source, r.model_version, r.scored_for
    FROM ml.content_recommendations r
    JOIN marts.dim_content c ON c.video_id = r.video_id
    WHERE r.list_name = 'for_you' AND r.policyholder_id = :holder
      AND r.scored_for = (
          SELECT max(scored_for) FROM ml.content_recommendations
          WHERE list_name = 'for_you' AND policyholder_id = :holder
      )
    ORDER BY r.rank
    LIMIT :limit
    """
)


def latest_scoring(conn: Connection, scope: AgentScope) -> date | None:
    return conn.execute(_LATEST_SCORING, {"agent": scope.agent_id}).scalar()


def _due(row: Any) -> dict[str, Any]:
    due = plain_row(row)
    due["reasons"] = row["reasons"]
    return due


def premiums_due(conn: Connection, scope: AgentScope, days: int) -> dict[str, Any]:
    """Every premium of the agent's customers due in the `days` days from the latest scoring
    (that day included, as the model scores them), with its lapse probability, risk band and
    reasons, in due-date order."""
    scored_for = latest_scoring(conn, scope)
    dues = []
    if scored_for is not None:
        until = scored_for + timedelta(days=days)
        rows = conn.execute(
            _DUES, {"agent": scope.agent_id, "scored_for": scored_for, "until": until}
        ).mappings()
        dues = [_due(row) for row in rows]
    return {
        "agent_id": str(scope.agent_id),
        "as_of": plain(scored_for),
        "days": days,
        "model_versions": sorted({d["model_version"] for d in dues}),
        "total_amount": round(sum(d["amount"] for d in dues), 2),
        "dues": dues,
    }


def suggested_action(risk_band: str, grace_end: date, as_of: date) -> dict[str, str]:
    """What the agent should do, by risk and time left (a rule, shown as such to the agent)."""
    days_left = (grace_end - as_of).days
    if risk_band == HIGH and days_left <= CALL_WITHIN_DAYS:
        return {"code": "call_now", "text": "Call today: the grace period ends within a week."}
    if risk_band == HIGH:
        return {
            "code": "call_and_remind",
            "text": "Send the reminder on WhatsApp, then call before the grace period ends.",
        }
    return {"code": "remind", "text": "Send a WhatsApp reminder with the suggested video."}


def _contacts(session: Session, holders: list[uuid.UUID]) -> dict[uuid.UUID, Policyholder]:
    rows = session.scalars(select(Policyholder).where(Policyholder.id.in_(holders)))
    return {row.id: row for row in rows}


def _templates(session: Session, provider_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """The tenant's approved utility templates by language, premium reminders first."""
    rows = session.scalars(
        select(WhatsAppTemplate)
        .where(
            WhatsAppTemplate.provider_id == provider_id,
            WhatsAppTemplate.approval_status == WhatsAppTemplateStatus.APPROVED,
        )
        .order_by(WhatsAppTemplate.name)
    )
    chosen: dict[str, dict[str, Any]] = {}
    for row in rows:
        score = ("premium" in row.name) + ("reminder" in row.name)
        current = chosen.get(row.language)
        if current is None or score > current["_score"]:
            chosen[row.language] = {
                "_score": score,
                "template_id": str(row.id),
                "name": row.name,
                "language": row.language,
            }
    return chosen


def _template_for(templates: dict[str, dict[str, Any]], language: str) -> dict[str, Any] | None:
    found = templates.get(language) or templates.get("en")
    return {k: v for k, v in found.items() if k != "_score"} if found else None


def at_risk_customers(
    conn: Connection, session: Session, scope: AgentScope, limit: int
) -> dict[str, Any]:
    """The agent's customers with a high- or medium-risk premium due, riskiest first: their
    riskiest premium with its reasons, a suggested action, the video to send next and the
    WhatsApp template to send it with (in the customer's language, else English)."""
    scored_for = latest_scoring(conn, scope)
    if scored_for is None:
        return {"agent_id": str(scope.agent_id), "as_of": None, "customers": []}
    rows = conn.execute(_AT_RISK, {"agent": scope.agent_id, "scored_for": scored_for}).mappings()
    ranked = sorted(rows, key=lambda r: (-r["lapse_probability"], r["due_date"]))[:limit]
    holders = [r["policyholder_id"] for r in ranked]
    videos = {
        v["policyholder_id"]: v
        for v in conn.execute(_SEND_NEXT, {"holders": holders, "scored_for": scored_for})
        .mappings()
        .all()
    }
    contacts = _contacts(session, holders)
    templates = _templates(session, scope.provider_id)
    customers = []
    for row in ranked:
        contact = contacts.get(row["policyholder_id"])
        language = contact.preferred_language if contact else "en"
        video = videos.get(row["policyholder_id"])
        customers.append(
            {
                "policyholder_id": str(row["policyholder_id"]),
                "name": contact.full_name if contact else None,
                "phone": contact.phone if contact else None,
                "language": language,
                "riskiest_premium": _due(row),
                "suggested_action": suggested_action(
                    row["risk_band"], row["grace_end_date"], scored_for
                ),
                "suggested_video": plain_row(video, ("video_id", "title", "language", "category"))
                if video
                else None,
                "whatsapp_template": _template_for(templates, language),
            }
        )
    return {
        "agent_id": str(scope.agent_id),
        "as_of": scored_for.isoformat(),
        "model_versions": sorted({c["riskiest_premium"]["model_version"] for c in customers}),
        "customers": customers,
    }


def recommended_videos(conn: Connection, policyholder_id: uuid.UUID, limit: int) -> dict:
    """The policyholder's "for you" list of the latest scoring, best first."""
    rows = [
        plain_row(r)
        for r in conn.execute(_FOR_YOU, {"holder": policyholder_id, "limit": limit}).mappings()
    ]
    return {
        "policyholder_id": str(policyholder_id),
        "as_of": rows[0]["scored_for"] if rows else None,
        "model_versions": sorted({r["model_version"] for r in rows}),
        "videos": [
            {k: v for k, v in r.items() if k not in ("scored_for", "model_version")} for r in rows
        ],
    }
