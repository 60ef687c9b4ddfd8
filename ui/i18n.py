"""The console's words in English and Simplified Chinese: `t(key)` in the chosen language.

The language is chosen in the sidebar (session state `lang`). The console's own words are
`contracts.text.Text`s like the labels that come from the backend or the contract (kinds, figures,
alarm titles, device names); any of them is shown with `text.pick(lang())`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from contracts.text import Text

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
    # -- overview --------------------------------------------------------------------------------
    "overview.today": ("Today on the street · {day}", "今日街道 · {day}"),
    "overview.devices_online": ("Devices online", "在线设备"),
    "overview.open_alarms": ("Open alarms", "未处理告警"),
    "overview.share_of": ("{share}", "{share}"),
    "overview.map": ("Street map", "街道示意图"),
    "overview.map_help": (
        "Hover a device for its name. Red: open alarm · grey: offline · green: OK.",
        "鼠标悬停查看设备名称。红色：有告警 · 灰色：离线 · 绿色：正常。",
    ),
    "overview.alarms_now": ("Open alarms now", "当前告警"),
    "overview.no_alarms": ("No open alarms. All quiet.", "没有未处理的告警。"),
    "overview.more_alarms": ("…and {n} more on the Alarms page.", "……另有 {n} 条，见告警页。"),
    "overview.by_kind": ("Devices by kind", "各类设备"),
    "col.online": ("Online", "在线"),
    "overview.activity": ("Activity per hour today", "今日每小时活动"),
    "overview.no_activity": ("Nothing counted yet today.", "今天尚无统计。"),
    "map.kind": ("Kind", "类型"),
    "map.state": ("State", "状态"),
    "map.name": ("Name", "名称"),
    "map.other_name": ("中文名", "English name"),
    # -- devices ---------------------------------------------------------------------------------
    "devices.title": ("Devices", "设备"),
    "devices.caption": (
        "Every device on the street with its availability and alarms; pick one for its details.",
        "街道上的所有设备及其在线状态与告警；选择一台查看详情。",
    ),
    "devices.filter_kind": ("Kind", "类型"),
    "devices.filter_availability": ("Availability", "在线状态"),
    "devices.filter_alarm": ("Alarms", "告警"),
    "devices.with_alarm": ("With open alarms", "有告警"),
    "devices.without_alarm": ("Without alarms", "无告警"),
    "devices.count": ("{n} of {total} devices", "{total} 台设备中的 {n} 台"),
    "devices.none": ("No device matches these filters.", "没有符合条件的设备。"),
    "devices.select": ("Device", "设备"),
    "devices.tab_state": ("Twin state", "设备孪生"),
    "devices.tab_telemetry": ("Telemetry", "遥测"),
    "devices.tab_events": ("Recent events", "最近事件"),
    "devices.tab_alarms": ("Alarms", "告警"),
    "devices.tab_commands": ("Commands", "指令"),
    "devices.no_telemetry": ("No telemetry reported yet.", "尚无遥测数据。"),
    "devices.no_numeric": ("This kind reports no numeric telemetry.", "该类型没有数值遥测。"),
    "devices.fields": ("Fields", "字段"),
    "devices.bucket": ("Resolution", "粒度"),
    "devices.bucket.minute": ("Minutes", "按分钟"),
    "devices.bucket.hour": ("Hours", "按小时"),
    "devices.bucket_help": (
        "Per minute over the last 3 hours, or per hour over the last 2 days; the line is the "
        "average, the band the minimum and maximum.",
        "近 3 小时按分钟，或近 2 天按小时；折线为平均值，阴影为最小值与最大值。",
    ),
    "devices.no_series": ("No samples of {field} in this window.", "该时段内没有 {field} 的数据。"),
    "devices.no_events": ("No events from this device yet.", "该设备尚无事件。"),
    "devices.no_open_alarms": ("No open alarms on this device.", "该设备没有未处理的告警。"),
    "devices.to_alarms": ("Handle alarms on the Alarms page", "前往告警页处理"),
    "devices.command": ("Command", "指令"),
    "devices.no_params": ("This command takes no parameters.", "该指令无需参数。"),
    "devices.send": ("Send", "发送"),
    "devices.sent": ("Command {name} sent as {id}", "指令 {name} 已发送（{id}）"),
    "devices.recent_commands": ("Recent commands", "最近指令"),
    "devices.availability_since": ("{availability} since {time}", "{time} 起{availability}"),
    "devices.last_seq": ("Last sequence number", "最新序号"),
    "cmd.pending": ("pending", "待发送"),
    "cmd.sent": ("sent to the device", "已发往设备"),
    "cmd.accepted": ("accepted by the device", "设备已接受"),
    "cmd.succeeded": ("succeeded", "执行成功"),
    "cmd.rejected": ("rejected by the device", "设备拒绝"),
    "cmd.failed": ("failed", "执行失败"),
    "cmd.timed-out": ("timed out: no answer from the device", "超时：设备无应答"),
    "cmd.progress": ("Command {name}: {status}", "指令 {name}：{status}"),
    # -- events ----------------------------------------------------------------------------------
    "events.title": ("Events", "事件"),
    "events.caption": (
        "The live feed of what devices report, newest first. Injected events are marked 💉.",
        "设备上报事件的实时流，最新在前。注入的事件标记为 💉。",
    ),
    "events.type": ("Event type", "事件类型"),
    "events.injected": ("Injected", "注入"),
    "events.injected_only": ("Injected only", "仅注入"),
    "events.real_only": ("Not injected", "非注入"),
    "events.range": ("Time range", "时间范围"),
    "range.15m": ("Last 15 min", "近 15 分钟"),
    "range.1h": ("Last hour", "近 1 小时"),
    "range.today": ("Today", "今天"),
    "range.24h": ("Last 24 hours", "近 24 小时"),
    "range.7d": ("Last 7 days", "近 7 天"),
    "range.all": ("Any time", "全部时间"),
    "events.none": ("No events match these filters yet.", "暂无符合条件的事件。"),
    "events.shown": ("Latest {n} events", "最新 {n} 条事件"),
    "events.csv": ("Download CSV", "下载 CSV"),
    "events.csv_help": (
        "Every event matching the filters (up to 100,000), from the backend's /events.csv.",
        "导出符合筛选条件的全部事件（最多 100,000 条）。",
    ),
    # -- alarms ----------------------------------------------------------------------------------
    "alarms.title": ("Alarms", "告警"),
    "alarms.caption": (
        "Acknowledge an alarm when someone is on it; clear it when it is resolved.",
        "有人处理时确认告警，问题解决后解除告警。",
    ),
    "alarms.tab_open": ("Open", "未处理"),
    "alarms.tab_history": ("History", "历史"),
    "alarms.none_open": ("No open alarms. All quiet.", "没有未处理的告警。"),
    "alarms.raised_at": ("raised {time}", "{time} 产生"),
    "alarms.occurrences": ("{n} occurrences, last {time}", "共 {n} 次，最近 {time}"),
    "alarms.ack_by": ("acknowledged by {by} at {time}", "{by} 于 {time} 确认"),
    "alarms.comment": ("Comment", "备注"),
    "alarms.comment_placeholder": ("What was done, who is on it…", "处理情况、负责人……"),
    "alarms.acknowledge": ("Acknowledge", "确认"),
    "alarms.clear": ("Clear", "解除"),
    "alarms.note": ("Add note", "添加备注"),
    "alarms.done.acknowledged": ("Alarm {id} acknowledged by {by}.", "告警 {id} 已由 {by} 确认。"),
    "alarms.done.cleared": ("Alarm {id} cleared by {by}.", "告警 {id} 已由 {by} 解除。"),
    "alarms.history_caption": (
        "Every alarm, newest first; pick one to read its notes.",
        "全部告警，最新在前；选择一条查看处理记录。",
    ),
    "alarms.none": ("No alarms yet.", "暂无告警。"),
    "alarms.notes_of": ("Notes of alarm", "处理记录"),
    # -- inject ----------------------------------------------------------------------------------
    "inject.title": ("Inject an event", "注入事件"),
    "inject.caption": (
        "The event is published on the device's own topic, flagged as injected, and comes back "
        "through ingest like any other: rules and alarms see it as real.",
        "事件经由设备自己的主题发布并标记为注入，与真实事件一样经过接入处理，同样会触发规则与告警。",
    ),
    "inject.tab_incidents": ("One-click incidents", "一键事件"),
    "inject.tab_form": ("Event form", "事件表单"),
    "inject.tab_raw": ("Raw JSON", "原始 JSON"),
    "inject.device": ("Device", "设备"),
    "inject.type": ("Event type", "事件类型"),
    "inject.submit": ("Inject", "注入"),
    "inject.result": ("Result", "结果"),
    "inject.raw_label": ("Request body (JSON)", "请求体（JSON）"),
    "inject.raw_help": (
        'An object with "device_id", "type" and "data", as POST /events/inject takes it.',
        '包含 "device_id"、"type" 和 "data" 的对象，即 POST /events/inject 的请求体。',
    ),
    "inject.raw_invalid": ("This is not a JSON object: {error}", "不是有效的 JSON 对象：{error}"),
    "inject.published": ("Published as event {id} on {topic}", "已发布事件 {id}（主题 {topic}）"),
    "inject.waiting": ("Waiting for it to come back through ingest…", "等待事件经接入处理入库……"),
    "inject.stored": ("Stored by the backend", "已入库"),
    "inject.not_stored": (
        "Not stored yet: check the Data quality page.",
        "尚未入库：请查看数据质量页。",
    ),
    "inject.alarm_raised": (
        "Alarm raised: {title} ({severity}) on {device}",
        "产生告警：{title}（{severity}），设备 {device}",
    ),
    "inject.alarm_counted": (
        "Counted on the open alarm: {title} ({severity}), {n} occurrences",
        "计入已有告警：{title}（{severity}），共 {n} 次",
    ),
    "inject.no_alarm": ("No alarm raised by this event.", "该事件未产生告警。"),
    "inject.no_devices": ("No devices are provisioned.", "没有设备。"),
    "inc.intro": (
        "Stage a typical incident on a real device of the street with one click.",
        "一键在街道的真实设备上模拟典型事件。",
    ),
    "inc.stranger": ("A stranger at a gate", "陌生人闯门"),
    "inc.stranger_desc": ("Face not recognised: entry denied.", "人脸未识别，拒绝通行。"),
    "inc.tailgating": ("Tailgating", "尾随进入"),
    "inc.tailgating_desc": ("Two people slip in behind a resident.", "两人尾随住户进入。"),
    "inc.cooler": ("A cabinet's cooler fails", "药柜冷藏故障"),
    "inc.cooler_desc": (
        "Compressor stops, the cold compartment leaves its band.",
        "压缩机停机，冷藏温度超出范围。",
    ),
    "inc.stockout": ("Stock runs out", "药品缺货"),
    "inc.stockout_desc": (
        "A resident asks for a medicine whose slot is empty.",
        "居民所需药品的格口已空。",
    ),
    "inc.crash": ("A device crashes", "设备死机"),
    "inc.crash_desc": (
        "The device loses power for a minute: the broker announces it offline by its Last Will, "
        "then it boots again. Needs the running simulator.",
        "设备断电一分钟：代理按遗嘱消息宣告其离线，随后重新启动。需要模拟器在运行。",
    ),
    "inc.crash_started": (
        "Crash drill started (run {run_id}): follow it under “Run a shipped scenario”.",
        "死机演练已开始（运行 {run_id}）：在“运行预置演练”中查看进度。",
    ),
    "inc.go": ("Stage it", "一键触发"),
    "inc.no_device": ("No {kind} on the street.", "街道上没有{kind}。"),
    # -- inject: shipped scenarios (drills) ------------------------------------------------------
    "inject.tab_scenarios": ("Run a shipped scenario", "运行预置演练"),
    "drills.intro": (
        "A drill plays a timeline of injections and commands on real devices of the street and "
        "checks what the backend made of it: each expectation passes or fails with what was seen.",
        "演练在街道的真实设备上按时间线注入事件、下发指令，并检查后端的处理结果：每项预期给出"
        "通过或失败及实际所见。",
    ),
    "drills.none": ("No scenarios are shipped with this backend.", "此后端没有预置演练。"),
    "drills.pick": ("Scenario", "演练"),
    "drills.steps_word": ("steps", "步"),
    "drills.checks": ("It checks", "检查项"),
    "drills.start": ("Start the drill", "开始演练"),
    "drills.stop": ("Stop", "停止"),
    "drills.steps": ("step {done} of {total}", "第 {done}/{total} 步"),
    "drills.status.running": (
        "Running {name}: {passed}/{total} expectations passed so far",
        "正在运行 {name}：已通过 {passed}/{total} 项预期",
    ),
    "drills.status.passed": (
        "Passed {name}: {passed}/{total} expectations",
        "演练 {name} 通过：{passed}/{total} 项预期",
    ),
    "drills.status.failed": (
        "Failed {name}: {passed}/{total} expectations passed",
        "演练 {name} 未通过：仅 {passed}/{total} 项预期通过",
    ),
    "drills.status.stopped": (
        "Stopped {name}: {passed}/{total} expectations passed before the stop",
        "演练 {name} 已停止：停止前 {passed}/{total} 项预期通过",
    ),
    "drills.status.error": (
        "{name} could not be carried out: {passed}/{total} expectations passed",
        "演练 {name} 无法执行：{passed}/{total} 项预期通过",
    ),
    "drills.pass": ("PASS", "通过"),
    "drills.fail": ("FAIL", "失败"),
    "drills.open": ("OPEN", "进行中"),
    "drills.seen": ("expected {expected}; seen {seen}", "预期 {expected}；实际 {seen}"),
    "drills.run_id": (
        "Run {run_id}, started {time}; its events: Events page or GET /events?run_id={run_id}",
        "运行编号 {run_id}，开始于 {time}；相关事件见事件页或 GET /events?run_id={run_id}",
    ),
    "drills.log": ("Run log", "运行日志"),
    "drills.recent": ("Recent runs ({n})", "最近的运行（{n}）"),
    "drills.col.started": ("Started", "开始时间"),
    "drills.col.scenario": ("Scenario", "演练"),
    "drills.col.status": ("Status", "状态"),
    "drills.col.verdicts": ("Passed", "通过"),
    "drills.col.run_id": ("Run id", "运行编号"),
    # -- quality ---------------------------------------------------------------------------------
    "quality.title": ("Data quality", "数据质量"),
    "quality.caption": (
        "Is everything the devices send arriving, once, in order, and in time?",
        "设备发送的数据是否完整、不重复、有序且及时到达？",
    ),
    "quality.broker": ("Broker", "消息代理"),
    "quality.broker_help": (
        "Whether the backend's ingest is connected to the MQTT broker.",
        "后端接入服务是否已连接 MQTT 消息代理。",
    ),
    "quality.database": ("Database", "数据库"),
    "quality.up": ("up", "正常"),
    "quality.down": ("down", "中断"),
    "quality.lag": ("Ingest lag", "接入延迟"),
    "quality.queue": ("Queue depth", "队列深度"),
    "quality.received": ("Received", "已接收"),
    "quality.stored": ("Stored", "已入库"),
    "quality.duplicates": ("Duplicates dropped", "重复丢弃"),
    "quality.dead_lettered": ("Dead letters", "死信"),
    "quality.missing": ("Missing (sequence gaps)", "缺失（序号断档）"),
    "quality.status.ok": ("Backend healthy", "后端运行正常"),
    "quality.status.degraded": ("Backend degraded", "后端运行降级"),
    "quality.gaps": ("Sequence gaps", "序号断档"),
    "quality.no_gaps": (
        "No gaps: every device's messages arrived in sequence.",
        "无断档：所有设备的消息序号连续。",
    ),
    "quality.reasons": ("Dead-letter reasons", "死信原因"),
    "quality.no_dead": (
        "No dead letters: every message passed validation.",
        "无死信：所有消息均通过校验。",
    ),
    "quality.recent_dead": ("Recent dead letters", "最近死信"),
    "quality.dead_note": (
        "Refused payloads are kept as a digest only: they may carry personal data.",
        "被拒消息仅保存摘要：其中可能含有个人信息。",
    ),
}

STRINGS: dict[str, Text] = {key: Text(en, zh) for key, (en, zh) in _WORDS.items()}


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
