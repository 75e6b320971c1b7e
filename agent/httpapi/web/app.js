// edge-agent status page: plain JavaScript, no build step, no dependency.
// It reads the JSON API of the same server every 10 s (paused while the page
// is hidden) and draws everything with DOM calls (never innerHTML with data).
"use strict";
(function () {
  var REFRESH_MS = 10000;
  var LANG_KEY = "edge-agent.lang";

  var T = {
    pt: {
      skip: "Ir para os pontos com falha", gateway: "Gateway", loading: "Carregando…",
      health: "Saúde do gateway", device: "Ponto", back: "Voltar", faulty: "Pontos com falha",
      all: "Todos os pontos", search: "Buscar por plaqueta", tickets: "Chamados", state: "Estado",
      st_all: "Todos", st_pending: "Na fila", st_sent: "Enviado", st_cancel_pending: "Cancelamento na fila",
      st_cancelled: "Cancelado", st_suppressed: "Descartado", st_failed: "Falhou",
      s_ok: "OK", s_warn: "Atenção", s_fail: "Falha", s_unknown: "Desconhecido",
      overall_ok: "Gateway funcionando normalmente", overall_warn: "Gateway funcionando, com avisos",
      overall_fail: "Gateway com falha", overall_unknown: "Estado do gateway desconhecido",
      a_broker: "Broker MQTT", a_api: "API M2M", a_queue: "Fila de chamados", a_store: "Armazenamento", a_clock: "Relógio",
      updated: "Atualizado às {t}", stale: "Sem resposta do gateway desde {t}; tentando de novo…",
      conn_error: "Sem conexão com o gateway: {e}. Tentando de novo a cada 10 s.",
      auth_error: "Acesso negado: informe o token do gateway (EDGE_HTTP_TOKEN) como senha.",
      broker_ok_short: "Conectado desde {t}", broker_fail: "Desconectado de {b}", broker_err: "Último erro: {e}",
      msgs_short: "{r} mensagens", rejected_short: "{x} rejeitadas", reconnects: "{n} reconexões",
      api_down: "Fora do ar: {n} falhas seguidas", api_errors: "{n} falhas seguidas", api_last: "Última resposta há {a}",
      api_never: "Nenhuma resposta ainda", collisions: "{n} colisões de protocolo",
      queue_empty: "Fila vazia", queue_n: "{n} na fila, o mais antigo há {a}", failed_n: "{n} recusados pela API",
      store_size: "{s} de {m}", store_size_nocap: "{s} (sem limite)", store_full: "CHEIO", store_ro: "somente leitura",
      store_corrupt: "arquivo corrompido movido em {t}",
      clock_ok: "Confiável", clock_bad: "Não confiável: regras de dia e noite suspensas",
      fleet: "{k} pontos conhecidos · {o} online · {f} com falha",
      none_faulty: "Nenhum ponto com falha.", since: "desde {t} (há {a})",
      online: "online", offline: "offline", faulty_badge: "falha", no_match: "Nenhum ponto encontrado.",
      showing: "Mostrando {n} de {t}. Use a busca para encontrar os outros.",
      no_tickets: "Nenhum chamado.", attempts: "{n} tentativas", attempt1: "1 tentativa", demanda: "demanda {n}",
      retry: "Reenviar", retried: "Chamado {p} de volta à fila.", retry_fail: "Não foi possível reenviar: {e}",
      last_seen: "Última comunicação", never: "nunca (desde o início do agente)", never_short: "sem comunicação desde o início do agente", registry: "Cadastro",
      in_reg: "no cadastro", not_in_reg: "fora do cadastro", address: "Endereço", position: "Posição",
      faults_h: "Falhas ativas", no_faults: "Nenhuma falha ativa.", alarms_h: "Alarmes do controlador",
      meas_h: "Últimas medições", measured_at: "medidas em {t}", no_meas: "Nenhuma medição recebida.",
      power_chart: "Potência (W), últimas 24 h", voltage_chart: "Tensão (V), últimas 24 h",
      chart_none: "Sem dados nas últimas 24 h.", chart_desc: "{what}: mínimo {min}, máximo {max}, {n} pontos",
      now: "agora", h24: "−24 h", h12: "−12 h", dev_tickets: "Chamados deste ponto", not_found: "Ponto {n} não encontrado.",
      m_voltage: "Tensão", m_current: "Corrente", m_power: "Potência", m_power_factor: "Fator de potência",
      m_energy: "Energia", m_lamp_on: "Lâmpada", m_dim: "Dimerização", m_lux: "Luminosidade",
      m_temperature: "Temperatura", m_burn_hours: "Horas de uso", m_switch_count: "Acionamentos",
      on: "ligada", off: "desligada", version: "edge-agent {v} · no ar há {u}",
      p_daemon_not_running: "O agente não está rodando.",
      p_mqtt_disconnected: "Sem conexão com o broker MQTT: as leituras dos controladores não chegam.",
      p_api_down: "A API M2M não responde ({n} falhas seguidas). Os chamados esperam na fila e serão enviados quando ela voltar.",
      p_api_errors: "As últimas {n} requisições à API M2M falharam.",
      p_protocol_collision: "{n} chamado(s) colidiram com os de outro gateway na API: dois gateways usam a mesma faixa de protocolo. Dê a cada gateway seu próprio EDGE_PROTOCOL_BASE e execute “edge-agent retry --failed”.",
      p_tickets_failed: "{n} chamado(s) recusados pela API. Veja “edge-agent tickets --state failed”, corrija a causa e reenvie.",
      p_queue_stale: "O chamado mais antigo da fila espera há {a}.",
      p_tickets_unreadable: "Não foi possível ler os chamados do armazenamento.",
      p_store_unavailable: "O armazenamento não está aberto.",
      p_store_full: "Armazenamento CHEIO ({s} de {m}): chamados na fila são mantidos, mas novas falhas não podem ser registradas. Aumente EDGE_STORE_MAX_MB ou libere espaço.",
      p_store_nearly_full: "Armazenamento quase cheio ({s} de {m}).",
      p_store_corrupt_moved: "Um arquivo de armazenamento corrompido foi movido para {p} e um novo foi criado; os chamados dele não estão no novo.",
      p_clock_untrusted: "Relógio do gateway não confiável: regras de dia e noite suspensas.",
      p_registry_row_errors: "{n} linha(s) do cadastro de pontos foram ignoradas por erro.",
      details: "Detalhe: {m}"
    },
    en: {
      skip: "Skip to faulty devices", gateway: "Gateway", loading: "Loading…",
      health: "Gateway health", device: "Device", back: "Back", faulty: "Faulty devices",
      all: "All devices", search: "Search by nameplate", tickets: "Tickets", state: "State",
      st_all: "All", st_pending: "Queued", st_sent: "Sent", st_cancel_pending: "Cancel queued",
      st_cancelled: "Cancelled", st_suppressed: "Suppressed", st_failed: "Failed",
      s_ok: "OK", s_warn: "Warning", s_fail: "Failure", s_unknown: "Unknown",
      overall_ok: "Gateway working normally", overall_warn: "Gateway working, with warnings",
      overall_fail: "Gateway failure", overall_unknown: "Gateway state unknown",
      a_broker: "MQTT broker", a_api: "M2M API", a_queue: "Ticket queue", a_store: "Store", a_clock: "Clock",
      updated: "Updated at {t}", stale: "No answer from the gateway since {t}; retrying…",
      conn_error: "Cannot reach the gateway: {e}. Retrying every 10 s.",
      auth_error: "Access denied: enter the gateway token (EDGE_HTTP_TOKEN) as the password.",
      broker_ok_short: "Connected since {t}", broker_fail: "Disconnected from {b}", broker_err: "Last error: {e}",
      msgs_short: "{r} messages", rejected_short: "{x} rejected", reconnects: "{n} reconnects",
      api_down: "Down: {n} failures in a row", api_errors: "{n} failures in a row", api_last: "Last answer {a} ago",
      api_never: "No answer yet", collisions: "{n} protocol collisions",
      queue_empty: "Queue empty", queue_n: "{n} queued, oldest waiting {a}", failed_n: "{n} refused by the API",
      store_size: "{s} of {m}", store_size_nocap: "{s} (no cap)", store_full: "FULL", store_ro: "read-only",
      store_corrupt: "corrupt file moved aside on {t}",
      clock_ok: "Trusted", clock_bad: "Not trusted: day and night rules suspended",
      fleet: "{k} devices known · {o} online · {f} faulty",
      none_faulty: "No faulty device.", since: "since {t} ({a} ago)",
      online: "online", offline: "offline", faulty_badge: "fault", no_match: "No device found.",
      showing: "Showing {n} of {t}. Search to find the others.",
      no_tickets: "No ticket.", attempts: "{n} attempts", attempt1: "1 attempt", demanda: "demanda {n}",
      retry: "Retry", retried: "Ticket {p} is back in the queue.", retry_fail: "Could not retry: {e}",
      last_seen: "Last seen", never: "never (since the agent started)", never_short: "not heard from since the agent started", registry: "Registry",
      in_reg: "in the registry", not_in_reg: "not in the registry", address: "Address", position: "Position",
      faults_h: "Active faults", no_faults: "No active fault.", alarms_h: "Controller alarms",
      meas_h: "Latest measurements", measured_at: "measured at {t}", no_meas: "No measurement received.",
      power_chart: "Power (W), last 24 h", voltage_chart: "Voltage (V), last 24 h",
      chart_none: "No data in the last 24 h.", chart_desc: "{what}: minimum {min}, maximum {max}, {n} points",
      now: "now", h24: "−24 h", h12: "−12 h", dev_tickets: "Tickets of this device", not_found: "Device {n} not found.",
      m_voltage: "Voltage", m_current: "Current", m_power: "Power", m_power_factor: "Power factor",
      m_energy: "Energy", m_lamp_on: "Lamp", m_dim: "Dimming", m_lux: "Ambient light",
      m_temperature: "Temperature", m_burn_hours: "Burn hours", m_switch_count: "Switch count",
      on: "on", off: "off", version: "edge-agent {v} · up {u}",
      p_daemon_not_running: "The agent is not running.",
      p_mqtt_disconnected: "Not connected to the MQTT broker: controller readings do not arrive.",
      p_api_down: "The M2M API does not answer ({n} failures in a row). Tickets wait in the queue and are sent when it is back.",
      p_api_errors: "The last {n} requests to the M2M API failed.",
      p_protocol_collision: "{n} ticket(s) collided with another gateway's at the API: two gateways share a protocol range. Give each gateway its own EDGE_PROTOCOL_BASE, then run “edge-agent retry --failed”.",
      p_tickets_failed: "{n} ticket(s) refused by the API. See “edge-agent tickets --state failed”, fix the cause and retry.",
      p_queue_stale: "The oldest queued ticket has waited {a}.",
      p_tickets_unreadable: "The tickets cannot be read from the store.",
      p_store_unavailable: "The store is not open.",
      p_store_full: "Store FULL ({s} of {m}): queued tickets are kept, but new faults cannot be saved. Raise EDGE_STORE_MAX_MB or free space.",
      p_store_nearly_full: "Store nearly full ({s} of {m}).",
      p_store_corrupt_moved: "A corrupt store file was moved aside to {p} and a new one started; its tickets are not in the new one.",
      p_clock_untrusted: "Gateway clock not trusted: day and night rules suspended.",
      p_registry_row_errors: "{n} row(s) of the device registry were skipped.",
      details: "Detail: {m}"
    }
  };
  var SYM = { ok: "✓", warn: "!", fail: "✕", unknown: "?" };

  var lang = "pt";
  try { if (localStorage.getItem(LANG_KEY) === "en") { lang = "en"; } } catch (e) { /* storage off */ }
  // ?lang=en (or pt) in a link chooses the language, and it is remembered.
  var asked = /[?&]lang=(en|pt)\b/.exec(location.search);
  if (asked) {
    lang = asked[1];
    try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* storage off */ }
  }

  var state = {
    status: null, faulty: null, all: null, tickets: null, device: null, deviceTickets: null,
    deviceName: "", lastOK: null, error: "", authError: false, notice: ""
  };

  function t(key, p) {
    var s = (T[lang] && T[lang][key]) || T.pt[key] || key;
    if (p) {
      s = s.replace(/\{(\w+)\}/g, function (m, k) { return p[k] === undefined || p[k] === null ? "" : String(p[k]); });
    }
    return s;
  }
  function $(id) { return document.getElementById(id); }
  // el builds an element; children are nodes or strings (as text, never HTML).
  function el(tag, attrs) {
    var n = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") { n.textContent = attrs[k]; } else if (k === "cls") { n.className = attrs[k]; } else { n.setAttribute(k, attrs[k]); }
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) { continue; }
      n.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return n;
  }
  function svg(tag, attrs) {
    var n = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    return n;
  }
  function clear(n) { while (n.firstChild) { n.removeChild(n.firstChild); } return n; }

  function locale() { return lang === "en" ? "en-GB" : "pt-BR"; }
  function num(v, digits) {
    return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits === undefined ? 1 : digits }).format(v);
  }
  function fmtTime(iso, withDate) {
    if (!iso) { return ""; }
    var o = { hour: "2-digit", minute: "2-digit" };
    if (withDate) { o.day = "2-digit"; o.month = "2-digit"; }
    return new Intl.DateTimeFormat(locale(), o).format(new Date(iso));
  }
  // Ages are measured against the gateway's clock, not the phone's.
  function nowMs() {
    return state.status && state.status.now ? Date.parse(state.status.now) : Date.now();
  }
  function age(iso) {
    if (!iso) { return ""; }
    return dur(Math.max(0, (nowMs() - Date.parse(iso)) / 1000));
  }
  function dur(s) {
    s = Math.floor(s);
    if (s < 60) { return s + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " min"; }
    if (s < 172800) { var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60); return h + " h" + (m ? " " + m + " min" : ""); }
    return Math.floor(s / 86400) + (lang === "en" ? " d" : " dias");
  }
  function bytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return num(n, i ? 1 : 0) + " " + u[i];
  }
  function faultLabel(f) { return (f.label && f.label[lang]) || f.name; }
  function stateLabel(s) { return t("st_" + s); }

  // ---- data ----
  function getJSON(path) {
    return fetch(path, { headers: { "Accept": "application/json" }, cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (!r.ok) {
            var e = new Error(body.error || ("HTTP " + r.status));
            e.status = r.status;
            throw e;
          }
          return body;
        });
      });
  }

  function searchQuery() { return ($("search").value || "").trim(); }

  var refreshing = false, timer = null;
  function refresh() {
    if (refreshing) { return; }
    refreshing = true;
    var q = searchQuery();
    var ts = $("ticket-state").value;
    var jobs = [
      getJSON("/api/status"),
      getJSON("/api/devices?faulty=1&limit=500"),
      getJSON("/api/devices?limit=100" + (q ? "&q=" + encodeURIComponent(q) : "")),
      getJSON("/api/tickets?limit=50" + (ts ? "&state=" + encodeURIComponent(ts) : ""))
    ];
    if (state.deviceName) {
      var n = encodeURIComponent(state.deviceName);
      jobs.push(getJSON("/api/devices/" + n).catch(function (e) { return { notFound: e.status === 404, error: e.message }; }));
      jobs.push(getJSON("/api/tickets?limit=20&nameplate=" + n).catch(function () { return null; }));
    }
    Promise.all(jobs).then(function (r) {
      state.status = r[0]; state.faulty = r[1]; state.all = r[2]; state.tickets = r[3];
      if (state.deviceName) { state.device = r[4]; state.deviceTickets = r[5]; }
      state.lastOK = new Date(); state.error = ""; state.authError = false;
      render();
    }).catch(function (e) {
      state.error = e.message || String(e);
      state.authError = e.status === 401;
      renderBanner();
    }).then(function () { refreshing = false; });
  }
  function schedule() {
    if (timer) { clearInterval(timer); }
    timer = setInterval(function () { if (!document.hidden) { refresh(); } }, REFRESH_MS);
  }

  // ---- rendering ----
  function applyStatic() {
    document.documentElement.lang = lang === "en" ? "en" : "pt-BR";
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (n) { n.textContent = t(n.getAttribute("data-i18n")); });
    Array.prototype.forEach.call(document.querySelectorAll(".lang button"), function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-lang") === lang ? "true" : "false");
    });
    $("search").setAttribute("placeholder", lang === "en" ? "e.g. LP-0012" : "ex.: LP-0012");
  }

  function render() {
    applyStatic();
    renderBanner();
    if (state.status) { renderHealth(state.status); }
    if (state.faulty) { renderFaulty(state.faulty); }
    if (state.all) { renderAll(state.all); }
    if (state.tickets) { renderTickets($("tickets"), state.tickets.tickets); }
    renderDevice();
  }

  function renderBanner() {
    var b = $("conn-error");
    if (state.error) {
      b.textContent = state.authError ? t("auth_error") : t("conn_error", { e: state.error });
      b.hidden = false;
      if (state.lastOK) { $("updated").textContent = t("stale", { t: fmtTime(state.lastOK.toISOString()) }); }
    } else if (state.notice) {
      b.textContent = state.notice; b.hidden = false;
    } else {
      b.hidden = true;
      if (state.lastOK) { $("updated").textContent = t("updated", { t: new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(state.lastOK) }); }
    }
  }

  function card(area, st, lines) {
    var kids = [el("span", { cls: "sym", "aria-hidden": "true", text: SYM[st] || "?" }),
      el("div", null, el("h3", null, el("span", { text: t("a_" + area) }), el("span", { cls: "word", text: t("s_" + st) })))];
    lines.forEach(function (l) { if (l) { kids[1].appendChild(el("p", { cls: "detail", text: l })); } });
    var li = el("li", { cls: "card " + st, "data-area": area });
    kids.forEach(function (k) { li.appendChild(k); });
    return li;
  }

  function problemText(p, s) {
    var tk = s.tickets, st = s.store;
    var params = {
      n: 0, a: dur(tk.oldest_queued_age_s || 0), s: bytes(st.size_bytes || 0), m: bytes(st.max_bytes || 0), p: st.corrupt_moved_to
    };
    switch (p.code) {
      case "api_down": case "api_errors": params.n = s.m2m.consecutive_failures; break;
      case "protocol_collision": params.n = s.m2m.protocol_collisions; break;
      case "tickets_failed": params.n = tk.failed; break;
      case "registry_row_errors": params.n = s.registry.row_errors; break;
    }
    var key = "p_" + p.code;
    if (lang === "en" || !T.pt[key]) { return T.en[key] ? t(key, params) : p.message; }
    return t(key, params);
  }

  function renderHealth(s) {
    $("gw-id").textContent = s.gateway_id || "";
    document.title = "edge-agent " + (s.gateway_id || "");
    var h = s.health || {};
    var ov = $("overall");
    ov.className = "overall " + (h.overall || "unknown");
    clear(ov).appendChild(el("span", { cls: "sym", "aria-hidden": "true", text: SYM[h.overall] || "?" }));
    ov.appendChild(document.createTextNode(" " + t("overall_" + (h.overall || "unknown"))));

    var m = s.mqtt, a = s.m2m, tk = s.tickets, st = s.store;
    var cards = clear($("cards"));
    var live = s.source !== "store";
    // An area in order says little (one short line); one with a problem
    // says what is wrong and since when.
    cards.appendChild(card("broker", h.broker || "unknown", !live ? [t("p_daemon_not_running")] : m.connected ? [
      t("broker_ok_short", { t: fmtTime(m.connected_since, true) }) + " · " + t("msgs_short", { r: num(m.messages_received, 0) }) +
        (m.messages_rejected ? ", " + t("rejected_short", { x: num(m.messages_rejected, 0) }) : "") +
        (m.reconnects ? " · " + t("reconnects", { n: m.reconnects }) : "")
    ] : [
      t("broker_fail", { b: m.broker }),
      m.last_error ? t("broker_err", { e: m.last_error }) : ""
    ]));
    cards.appendChild(card("api", h.api || "unknown", !live ? [] : [
      a.down ? t("api_down", { n: a.consecutive_failures }) : (a.consecutive_failures ? t("api_errors", { n: a.consecutive_failures }) : ""),
      a.last_success_at ? t("api_last", { a: age(a.last_success_at) }) : t("api_never"),
      a.last_error && (a.down || a.consecutive_failures) ? t("broker_err", { e: a.last_error }) : "",
      a.protocol_collisions ? t("collisions", { n: a.protocol_collisions }) : ""
    ]));
    cards.appendChild(card("queue", h.queue || "unknown", [
      (tk.queued ? t("queue_n", { n: tk.queued, a: dur(tk.oldest_queued_age_s) }) : t("queue_empty")) +
        (tk.failed ? " · " + t("failed_n", { n: tk.failed }) : "")
    ]));
    cards.appendChild(card("store", h.store || "unknown", [
      (st.max_bytes ? t("store_size", { s: bytes(st.size_bytes), m: bytes(st.max_bytes) }) : t("store_size_nocap", { s: bytes(st.size_bytes) })) +
        (st.full ? " · " + t("store_full") : "") + (st.read_only ? " · " + t("store_ro") : ""),
      st.corrupt_moved_to ? t("store_corrupt", { t: fmtTime(st.corrupt_at, true) }) : ""
    ]));
    cards.appendChild(card("clock", h.clock || "unknown", !live ? [] : [
      s.clock.trusted ? t("clock_ok") : t("clock_bad"),
      !s.clock.trusted && s.clock.reason ? s.clock.reason : ""
    ]));

    var pl = clear($("problems"));
    (s.problems || []).forEach(function (p) {
      var text = problemText(p, s);
      var li = el("li", { cls: p.severity, "data-code": p.code },
        el("strong", { text: t("s_" + p.severity) + ": " }), text);
      if (lang === "pt" && text !== p.message) { li.setAttribute("title", p.message); }
      pl.appendChild(li);
    });
    $("fleet").textContent = live ? t("fleet", { k: num(s.devices.known, 0), o: num(s.devices.online, 0), f: num(s.devices.faulty, 0) }) : "";
    $("footer").textContent = t("version", { v: s.version, u: dur(s.uptime_s) });
  }

  function deviceLink(d, full) {
    var badge = d.faults.length ? el("span", { cls: "badge fail", text: t("faulty_badge") })
      : el("span", { cls: "badge " + (d.online ? "ok" : "unknown"), text: d.online ? t("online") : t("offline") });
    var a = el("a", { href: "#/d/" + encodeURIComponent(d.nameplate_num) },
      el("span", { cls: "row1" }, el("span", { cls: "name", text: d.nameplate_num }), badge));
    if (full) {
      d.faults.forEach(function (f) {
        a.appendChild(el("span", { cls: "fault" }, faultLabel(f) + " ",
          f.since ? el("span", { cls: "since", text: t("since", { t: fmtTime(f.since, true), a: age(f.since) }) }) : null));
      });
      var addr = siteText(d.site);
      if (addr) { a.appendChild(el("span", { cls: "addr", text: addr })); }
    }
    var meas = measShort(d);
    if (meas) { a.appendChild(el("span", { cls: "meas", text: meas })); }
    return el("li", { "data-nameplate": d.nameplate_num }, a);
  }
  function siteText(s) {
    if (!s) { return ""; }
    var parts = [];
    if (s.address) { parts.push(s.address + (s.address_number ? ", " + s.address_number : "")); }
    if (s.neighborhood) { parts.push(s.neighborhood); }
    if (s.municipality) { parts.push(s.municipality + (s.state_abbreviation ? "/" + s.state_abbreviation : "")); }
    if (s.reference_point) { parts.push(s.reference_point); }
    return parts.join(" — ");
  }
  function measShort(d) {
    var r = d.reading || {}, parts = [];
    if (r.lamp_on !== undefined) { parts.push(t("m_lamp_on") + " " + (r.lamp_on ? t("on") : t("off"))); }
    if (r.power !== undefined) { parts.push(num(r.power) + " W"); }
    if (r.voltage !== undefined) { parts.push(num(r.voltage) + " V"); }
    if (d.last_seen) { parts.push(t("last_seen").toLowerCase() + " " + fmtTime(d.last_seen, true)); } else { parts.push(t("never_short")); }
    return parts.join(" · ");
  }

  function renderFaulty(list) {
    var ul = clear($("faulty"));
    $("faulty-count").textContent = "(" + list.total + ")";
    if (!list.devices.length) { ul.appendChild(el("li", { cls: "empty", text: t("none_faulty") })); return; }
    list.devices.forEach(function (d) { ul.appendChild(deviceLink(d, true)); });
  }

  function renderAll(list) {
    var ul = clear($("all"));
    $("all-count").textContent = "(" + list.total + ")";
    if (!list.devices.length) { ul.appendChild(el("li", { cls: "empty", text: t("no_match") })); }
    list.devices.forEach(function (d) { ul.appendChild(deviceLink(d, false)); });
    $("all-more").textContent = list.total > list.count ? t("showing", { n: list.count, t: list.total }) : "";
  }

  function renderTickets(ul, tickets) {
    clear(ul);
    if (!tickets || !tickets.length) { ul.appendChild(el("li", { cls: "empty", text: t("no_tickets") })); return; }
    tickets.forEach(function (tk) {
      var cls = tk.state === "failed" ? "fail" : (tk.state === "pending" || tk.state === "cancel_pending" ? "warn" : (tk.state === "sent" ? "ok" : "unknown"));
      var li = el("li", { "data-protocol": String(tk.id_external_protocol) },
        el("span", { cls: "t1" }, el("span", { cls: "proto", text: "#" + tk.id_external_protocol }), el("span", { cls: "badge " + cls, text: stateLabel(tk.state) })),
        el("span", { cls: "meta" }, faultLabel({ name: tk.fault, label: tk.fault_label }) + " · ",
          el("a", { href: "#/d/" + encodeURIComponent(tk.nameplate_num), text: tk.nameplate_num })),
        el("span", { cls: "meta", text: [fmtTime(tk.created_at, true), tk.id_demanda ? t("demanda", { n: tk.id_demanda }) : "", tk.attempts ? (tk.attempts === 1 ? t("attempt1") : t("attempts", { n: tk.attempts })) : ""].filter(Boolean).join(" · ") }),
        tk.last_error ? el("span", { cls: "err", text: tk.last_error }) : null);
      if (tk.state === "failed") {
        var b = el("button", { type: "button", cls: "retry", text: t("retry") });
        b.addEventListener("click", function () { retry(tk.id_external_protocol, b); });
        li.appendChild(b);
      }
      ul.appendChild(li);
    });
  }

  function retry(p, button) {
    button.disabled = true;
    fetch("/api/tickets/" + encodeURIComponent(p) + "/retry", { method: "POST", credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (b) { if (!r.ok) { throw new Error(b.error || "HTTP " + r.status); } return b; }); })
      .then(function (b) { state.notice = t("retried", { p: b.ticket.id_external_protocol }); })
      .catch(function (e) { state.notice = t("retry_fail", { e: e.message }); })
      .then(function () { refresh(); setTimeout(function () { state.notice = ""; renderBanner(); }, 6000); });
  }

  // ---- the device view ----
  function route() {
    var m = /^#\/d\/(.+)$/.exec(location.hash);
    var name = m ? decodeURIComponent(m[1]) : "";
    if (name !== state.deviceName) {
      state.deviceName = name; state.device = null; state.deviceTickets = null;
      renderDevice();
      if (name) { refresh(); window.scrollTo(0, 0); }
    }
  }

  function renderDevice() {
    var sec = $("device-sec");
    if (!state.deviceName) { sec.hidden = true; return; }
    sec.hidden = false;
    $("dev-name").textContent = state.deviceName;
    var body = clear($("dev-body"));
    var d = state.device;
    if (!d) { body.appendChild(el("p", { cls: "muted", text: t("loading") })); return; }
    if (d.notFound || d.error) { body.appendChild(el("p", { cls: "empty", text: d.notFound ? t("not_found", { n: state.deviceName }) : d.error })); return; }

    var kv = el("dl", { cls: "kv" });
    function row(k, v) { if (v) { kv.appendChild(el("dt", { text: k })); kv.appendChild(el("dd", null, v)); } }
    row(t("state"), el("span", { cls: "badge " + (d.faults.length ? "fail" : (d.online ? "ok" : "unknown")), text: d.faults.length ? t("faulty_badge") : (d.online ? t("online") : t("offline")) }));
    row(t("last_seen"), d.last_seen ? fmtTime(d.last_seen, true) + " (" + age(d.last_seen) + ")" : t("never"));
    row(t("registry"), d.in_registry ? t("in_reg") : t("not_in_reg"));
    row(t("address"), siteText(d.site));
    if (d.lat !== null && d.lat !== undefined) { row(t("position"), num(d.lat, 6) + "; " + num(d.lon, 6)); }
    body.appendChild(kv);

    body.appendChild(el("h3", { text: t("faults_h") }));
    var fl = el("ul", { cls: "devices" });
    if (!d.faults.length) { fl.appendChild(el("li", { cls: "empty", text: t("no_faults") })); }
    d.faults.forEach(function (f) {
      fl.appendChild(el("li", null, el("span", { cls: "fault" }, faultLabel(f) + " ",
        f.since ? el("span", { cls: "since", text: t("since", { t: fmtTime(f.since, true), a: age(f.since) }) }) : null)));
    });
    body.appendChild(fl);
    if (d.alarms && d.alarms.length) { body.appendChild(el("p", null, el("strong", { text: t("alarms_h") + ": " }), d.alarms.join(", "))); }

    body.appendChild(el("h3", { text: t("meas_h") }));
    var r = d.reading || {}, mk = el("dl", { cls: "kv" });
    var units = { voltage: " V", current: " A", power: " W", power_factor: "", energy: " kWh", dim: " %", lux: " lux", temperature: " °C", burn_hours: " h", switch_count: "" };
    var any = false;
    ["lamp_on", "power", "voltage", "current", "power_factor", "dim", "lux", "temperature", "energy", "burn_hours", "switch_count"].forEach(function (k) {
      if (r[k] === undefined) { return; }
      any = true;
      mk.appendChild(el("dt", { text: t("m_" + k) }));
      mk.appendChild(el("dd", { text: k === "lamp_on" ? (r[k] ? t("on") : t("off")) : num(r[k], k === "power_factor" || k === "current" ? 2 : 1) + units[k] }));
    });
    if (any) {
      body.appendChild(mk);
      if (d.reading_at) { body.appendChild(el("p", { cls: "muted", text: t("measured_at", { t: fmtTime(d.reading_at, true) }) })); }
    } else {
      body.appendChild(el("p", { cls: "empty", text: t("no_meas") }));
    }
    body.appendChild(chart(d.history || [], "power", t("power_chart"), "p", " W"));
    body.appendChild(chart(d.history || [], "voltage", t("voltage_chart"), "v", " V"));

    body.appendChild(el("h3", { text: t("dev_tickets") }));
    var tl = el("ul", { cls: "tickets" });
    renderTickets(tl, state.deviceTickets ? state.deviceTickets.tickets : []);
    body.appendChild(tl);
  }

  // chart draws one series of the last 24 h as an inline SVG line; gaps
  // (half hours without a report) break the line.
  function chart(hist, key, title, cls, unit) {
    var W = 320, H = 120, L = 40, R = 8, TOP = 8, B = 20;
    var end = nowMs(), start = end - 24 * 3600 * 1000;
    var pts = hist.filter(function (p) { return p[key] !== null && p[key] !== undefined && Date.parse(p.at) >= start - 1800000; })
      .map(function (p) { return { t: Date.parse(p.at), v: p[key] }; });
    var fig = el("figure", { cls: "chart" }, el("figcaption", { text: title }));
    if (!pts.length) { fig.appendChild(el("p", { cls: "empty", text: t("chart_none") })); return fig; }
    var vals = pts.map(function (p) { return p.v; });
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    var y0 = key === "power" ? 0 : Math.floor(lo - 5), y1 = key === "power" ? Math.max(10, hi * 1.15) : Math.ceil(hi + 5);
    if (y1 <= y0) { y1 = y0 + 1; }
    function x(tm) { return L + (Math.min(Math.max(tm, start), end) - start) / (end - start) * (W - L - R); }
    function y(v) { return TOP + (1 - (v - y0) / (y1 - y0)) * (H - TOP - B); }
    var desc = t("chart_desc", { what: title, min: num(lo) + unit, max: num(hi) + unit, n: pts.length });
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": desc });
    var tt = svg("title"); tt.textContent = desc; s.appendChild(tt);
    [y0, (y0 + y1) / 2, y1].forEach(function (v) {
      s.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), "class": "grid" }));
      var lab = svg("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end", "class": "axis" }); lab.textContent = num(v, 0); s.appendChild(lab);
    });
    [[start, t("h24"), "start"], [start + 12 * 3600 * 1000, t("h12"), "middle"], [end, t("now"), "end"]].forEach(function (a) {
      var lab = svg("text", { x: x(a[0]), y: H - 5, "text-anchor": a[2], "class": "axis" }); lab.textContent = a[1]; s.appendChild(lab);
    });
    var run = [];
    function flush() {
      if (run.length > 1) { s.appendChild(svg("polyline", { points: run.join(" "), "class": "line-" + cls })); }
      run = [];
    }
    pts.forEach(function (p, i) {
      if (i > 0 && p.t - pts[i - 1].t > 1800000 * 1.5) { flush(); }
      run.push(x(p.t).toFixed(1) + "," + y(p.v).toFixed(1));
      s.appendChild(svg("circle", { cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 2, "class": "dot-" + cls }));
    });
    flush();
    fig.appendChild(s);
    return fig;
  }

  // ---- wiring ----
  function init() {
    Array.prototype.forEach.call(document.querySelectorAll(".lang button"), function (b) {
      b.addEventListener("click", function () {
        lang = b.getAttribute("data-lang") === "en" ? "en" : "pt";
        try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* storage off */ }
        render();
      });
    });
    var debounce = null;
    $("search").addEventListener("input", function () {
      clearTimeout(debounce);
      debounce = setTimeout(refresh, 300);
    });
    $("ticket-state").addEventListener("change", refresh);
    $("dev-back").addEventListener("click", function (e) { e.preventDefault(); history.pushState(null, "", location.pathname); state.deviceName = ""; renderDevice(); });
    window.addEventListener("hashchange", route);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { refresh(); } });
    applyStatic();
    route();
    refresh();
    schedule();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
