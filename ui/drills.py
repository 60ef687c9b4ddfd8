"""Run a shipped scenario (drill) from the console: pick one, start it, follow its steps and
verdicts while it runs (polled from GET /scenarios/runs/{id}, without a page reload), stop it."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from contracts.vocabulary import RunStatus
from ui.api import ApiError, call, call_or_show_error
from ui.common import fmt_time
from ui.i18n import t

RUN_KEY = "drills.run_id"  # session state: the run this console follows
STATUS_ICON = {
    RunStatus.RUNNING: "⏳",
    RunStatus.PASSED: "✅",
    RunStatus.FAILED: "❌",
    RunStatus.STOPPED: "⏹️",
    RunStatus.ERROR: "⚠️",
}

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def _md(text: str) -> str:
    """Literal text in markdown: verdicts quote rule names, values and paths ($ is LaTeX)."""
    return _MARKDOWN.sub(r"\\\1", text)


def _verdict(v: dict[str, Any], running: bool) -> None:
    if v["passed"] is None:
        icon, word = "⏳", t("drills.open")
    elif v["passed"]:
        icon, word = "✅", t("drills.pass")
    else:
        icon, word = "❌", t("drills.fail")
    st.markdown(f"{icon} **{word}** · {_md(v['name'])}")
    if v["passed"] is False or running:
        st.caption(_md(t("drills.seen", expected=v["expected"], seen=v["seen"])))
    else:
        st.caption(_md(f"{v['seen']} (+{v['elapsed_s']:.1f} s)"))


def _render(run: dict[str, Any]) -> None:
    status = run["status"]
    passed = sum(1 for v in run["verdicts"] if v["passed"])
    summary = t(
        f"drills.status.{status}",
        name=run["name"],
        passed=passed,
        total=len(run["verdicts"]),
    )
    if status == RunStatus.RUNNING:
        total = max(run["steps_total"], 1)
        st.progress(
            run["steps_done"] / total,
            text=f"⏳ {summary} · "
            + t("drills.steps", done=run["steps_done"], total=run["steps_total"]),
        )
    elif status == RunStatus.PASSED:
        st.success(summary, icon=STATUS_ICON[status])
    elif status == RunStatus.STOPPED:
        st.warning(summary, icon=STATUS_ICON[status])
    else:
        st.error(summary, icon=STATUS_ICON[status])
    if run.get("error"):
        st.error(run["error"])
    st.caption(t("drills.run_id", run_id=run["run_id"], time=fmt_time(run["started_at"])))
    for v in run["verdicts"]:
        _verdict(v, status == RunStatus.RUNNING)
    with st.expander(t("drills.log")):
        st.code("\n".join(run["log"]) or "…", language=None)


@st.fragment(run_every=1)
def _follow(run_id: str) -> None:
    run = call_or_show_error(lambda api: api.run(run_id))
    if run is None:
        return
    if run["status"] == RunStatus.RUNNING and st.button(
        t("drills.stop"), key="drills.stop", icon="⏹️", type="secondary"
    ):
        try:
            run = call(lambda api: api.stop_run(run_id))
        except ApiError as exc:
            st.error(str(exc))
    _render(run)
    if run["status"] != RunStatus.RUNNING:
        st.rerun()  # the whole page: stop polling, refresh the list of recent runs


def _followed_run() -> None:
    run_id = st.session_state.get(RUN_KEY)
    if not run_id:
        return
    run = call_or_show_error(lambda api: api.run(run_id))
    if run is None:
        return
    if run["status"] == RunStatus.RUNNING:
        _follow(str(run_id))
    else:
        _render(run)


def _recent() -> None:
    runs = call_or_show_error(lambda api: api.runs())
    if not runs:  # none yet, or the error is shown
        return
    with st.expander(t("drills.recent", n=len(runs))):
        st.dataframe(
            [
                {
                    t("drills.col.started"): fmt_time(r["started_at"]),
                    t("drills.col.scenario"): r["name"],
                    t("drills.col.status"): f"{STATUS_ICON[r['status']]} {r['status']}",
                    t("drills.col.verdicts"): (
                        f"{sum(1 for v in r['verdicts'] if v['passed'])}/{len(r['verdicts'])}"
                    ),
                    t("drills.col.run_id"): r["run_id"],
                }
                for r in runs
            ],
            hide_index=True,
            width="stretch",
        )


CRASH_S = 60  # how long a crashed device stays off the network


def crash_drill(device_id: str) -> dict[str, Any]:
    """An inline scenario: the device drops off abruptly for CRASH_S s and comes back."""
    return {
        "name": "device-crash",
        "description": f"{device_id} loses power for {CRASH_S} s, then boots again.",
        "steps": [{"id": "crash", "offline": {"device": device_id, "mode": "abrupt",
                                              "for_s": CRASH_S}}],
        "expect": [
            {"name": "the broker publishes its Last Will", "after": "crash",
             "twin": {"device": device_id, "field": "availability_reason", "value": "last-will",
                      "within": 15}},
            {"name": "it comes back online", "after": "crash",
             "twin": {"device": device_id, "field": "availability", "value": "online",
                      "within": CRASH_S + 30}},
        ],
    }  # fmt: skip


def start_inline(scenario: dict[str, Any]) -> dict[str, Any]:
    """Start an inline scenario and follow it (in the scenarios tab)."""
    run = call(lambda api: api.start_inline_run(scenario))
    st.session_state[RUN_KEY] = run["run_id"]
    return run


def scenarios_section() -> None:
    st.caption(t("drills.intro"))
    shipped = call_or_show_error(lambda api: api.scenarios())
    if shipped is None:
        return
    if not shipped:
        st.info(t("drills.none"))
        return
    by_name = {s["name"]: s for s in shipped}
    name = str(
        st.selectbox(
            t("drills.pick"),
            list(by_name),
            key="drills.name",
            format_func=lambda n: f"{n} · {by_name[n]['steps']} {t('drills.steps_word')}",
        )
    )
    chosen = by_name[name]
    with st.container(border=True):
        if chosen["description"]:
            st.markdown(_md(chosen["description"]))
        st.markdown(f"**{t('drills.checks')}**")
        st.markdown("\n".join(f"- {_md(e)}" for e in chosen["expectations"]))
    if st.button(t("drills.start"), key="drills.start", type="primary", icon="▶️"):
        try:
            run = call(lambda api: api.start_run(name))
        except ApiError as exc:
            st.error(str(exc))
        else:
            st.session_state[RUN_KEY] = run["run_id"]
    _followed_run()
    _recent()
