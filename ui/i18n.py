"""The console's words in English and Simplified Chinese: `t(key)` in the chosen language.

The language is chosen in the sidebar (session state `lang`). The shell's, the shared and the
clock's words are here, each page's in ui/page_words.py. The console's own words are
`contracts.text.Text`s like the labels that come from the backend or the contract (kinds, figures,
alarm titles, device names); any of them is shown with `text.pick(lang())`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from contracts.text import Text
from ui.page_words import PAGE_WORDS

LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"

# (English, 中文) by key; a table of plain pairs keeps each entry on one line.
_WORDS: dict[str, tuple[str, str]] = {
    # -- shell -----------------------------------------------------------------------------------
    "app.title": ("Lijia Street", "礼嘉街道"),
    "app.subtitle": (
        "Smart community operations · Liangjiang New Area, Chongqing",
        "智慧社区运营 · 重庆两江新区",
    ),
    "app.language": ("Language · 语言", "Language · 语言"),
    "app.operator": ("Operator", "值班员"),
    "app.operator_help": (
        "Recorded with every acknowledgement, clearance and comment.",
        "确认、解除和备注时记录的姓名。",
    ),
    "nav.overview": ("Overview", "总览"),
    "nav.devices": ("Devices", "设备"),
    "nav.events": ("Events", "事件"),
    "nav.alarms": ("Alarms", "告警"),
    "nav.inject": ("Inject", "注入事件"),
    "nav.quality": ("Data quality", "数据质量"),
    # -- the street's clock (ui/clock.py) --------------------------------------------------------
    "clock.title": ("Street clock", "街道时钟"),
    "clock.street": ("Street time", "街道时间"),
    "clock.paused": ("paused", "已暂停"),
    "clock.max": ("max", "最高速"),
    "clock.jumping": ("jumping to {to}", "正在快进至 {to}"),
    "clock.wall": ("wall clock", "真实时钟"),
    "clock.unavailable": ("street clock unavailable", "街道时钟不可用"),
    "clock.unavailable_help": (
        "The backend does not tell the street's time: the console uses the wall clock.",
        "后端未提供街道时间：控制台使用真实时钟。",
    ),
    "clock.wall_help": (
        "No simulator runs: the street follows the wall clock and cannot be steered.",
        "没有模拟器在运行：街道跟随真实时钟，无法调整。",
    ),
    "clock.origin": (
        "Seed {seed} · start {start} · simulators: {simulators}",
        "随机种子 {seed} · 起始 {start} · 模拟器：{simulators}",
    ),
    "clock.pause": ("Pause", "暂停"),
    "clock.resume": ("Resume", "继续"),
    "clock.speed": ("Speed", "速度"),
    "clock.speed_help": (
        "Street seconds per wall second; max: as fast as the broker takes the messages.",
        "每真实秒对应的街道秒数；最高速：按消息代理的承受能力尽快运行。",
    ),
    "clock.jump_at": ("Jump to", "快进至"),
    "clock.jump_help": (
        "The next time the street's clock shows this time: today's if still ahead, else "
        "tomorrow's. The skipped time is simulated but nothing from it is published.",
        "街道时钟下一次到达该时刻（今天尚未到达则为今天，否则为明天）。跳过的时段照常模拟，但不发布其中的消息。",
    ),
    "clock.jump": ("Jump", "快进"),
    "clock.done": ("Done: {clock}", "已调整：{clock}"),
    "weekday.0": ("Mon", "周一"),
    "weekday.1": ("Tue", "周二"),
    "weekday.2": ("Wed", "周三"),
    "weekday.3": ("Thu", "周四"),
    "weekday.4": ("Fri", "周五"),
    "weekday.5": ("Sat", "周六"),
    "weekday.6": ("Sun", "周日"),
    # -- errors ----------------------------------------------------------------------------------
    "err.unreachable": (
        "The backend at {url} cannot be reached. Is it running?",
        "无法连接后端 {url}，请确认其已启动。",
    ),
    "err.refused": (
        "The backend refused the request ({status}): {detail}",
        "后端拒绝请求（{status}）：{detail}",
    ),
    "err.not_json": ("The backend at {url} did not answer JSON.", "后端 {url} 的响应无效。"),
    # -- shared words ----------------------------------------------------------------------------
    "all": ("All", "全部"),
    "updated": ("Updated {time} · refreshes every {every} s", "更新于 {time} · 每 {every} 秒刷新"),
    "col.time": ("Time", "时间"),
    "col.device": ("Device", "设备"),
    "col.device_id": ("Device id", "设备编号"),
    "col.kind": ("Kind", "类型"),
    "col.type": ("Event", "事件"),
    "col.injected": ("Injected", "注入"),
    "col.details": ("Details", "详情"),
    "col.availability": ("Availability", "在线状态"),
    "col.last_seen": ("Last seen", "最近上报"),
    "col.alarms": ("Open alarms", "未处理告警"),
    "col.severity": ("Severity", "级别"),
    "col.alarm": ("Alarm", "告警"),
    "col.status": ("Status", "状态"),
    "col.raised": ("Raised", "发生时间"),
    "col.acknowledged": ("Acknowledged", "确认"),
    "col.cleared": ("Cleared", "解除"),
    "col.field": ("Field", "字段"),
    "col.value": ("Value", "数值"),
    "col.command": ("Command", "指令"),
    "col.params": ("Parameters", "参数"),
    "col.reason": ("Reason", "原因"),
    "col.action": ("Action", "操作"),
    "col.by": ("By", "操作人"),
    "col.comment": ("Comment", "备注"),
    "col.topic": ("Topic", "主题"),
    "col.size": ("Bytes", "字节"),
    "col.digest": ("SHA-256", "SHA-256"),
    "col.count": ("Count", "次数"),
    "col.missing": ("Missing", "缺失"),
    "col.gaps": ("Gaps (after → before)", "断档（之后 → 之前）"),
    "col.hour": ("Hour", "小时"),
    "availability.online": ("online", "在线"),
    "availability.offline": ("offline", "离线"),
    "availability.unknown": ("not seen yet", "未上线"),
    "state.ok": ("OK", "正常"),
    "state.alarm": ("Open alarm", "有告警"),
    "state.offline": ("Offline", "离线"),
    "state.unknown": ("Not seen yet", "未上线"),
    "severity.critical": ("critical", "紧急"),
    "severity.major": ("major", "重要"),
    "severity.minor": ("minor", "次要"),
    "severity.warning": ("warning", "提示"),
    "status.active": ("active", "未确认"),
    "status.acknowledged": ("acknowledged", "已确认"),
    "status.cleared": ("cleared", "已解除"),
    "note.raised": ("raised", "产生"),
    "note.acknowledged": ("acknowledged", "确认"),
    "note.cleared": ("cleared", "解除"),
    "note.comment": ("comment", "备注"),
    "cmd.pending": ("pending", "待发送"),
    "cmd.sent": ("sent to the device", "已发往设备"),
    "cmd.accepted": ("accepted by the device", "设备已接受"),
    "cmd.succeeded": ("succeeded", "执行成功"),
    "cmd.rejected": ("rejected by the device", "设备拒绝"),
    "cmd.failed": ("failed", "执行失败"),
    "cmd.timed-out": ("timed out: no answer from the device", "超时：设备无应答"),
    "cmd.progress": ("Command {name}: {status}", "指令 {name}：{status}"),
}

STRINGS: dict[str, Text] = {key: Text(en, zh) for key, (en, zh) in (_WORDS | PAGE_WORDS).items()}


def lang() -> str:
    """The chosen language; English outside a Streamlit session."""
    try:
        value = st.session_state.get("lang")
    except Exception:  # no script run context (e.g. a deferred download)
        return DEFAULT
    return value if value in LANGUAGES else DEFAULT


def t(key: str, **values: Any) -> str:
    text = STRINGS[key].pick(lang())
    return text.format(**values) if values else text
