// Task page: live progress over server-sent events, then the summary, proofread text,
// timed transcript, copy buttons and downloads. No token: the link is the capability.
"use strict";

(() => {
  const taskId = decodeURIComponent(location.pathname.split("/")[2] || "");
  const base = "/view/" + encodeURIComponent(taskId);
  const $ = (id) => document.getElementById(id);
  const FORMATS = [
    ["md", "Markdown"],
    ["txt", "TXT"],
    ["srt", "SRT"],
    ["vtt", "VTT"],
    ["json", "JSON"],
  ];
  const USAGE_STEPS = { proofread: "校对 proofread", summary: "总结 summary" };
  // What each button asks of the API (with the stored token), and when it applies.
  const ACTIONS = {
    cancel: { method: "DELETE", path: "", when: (d) => VS.isRunning(d.status) },
    retry: { method: "POST", path: "/retry", when: (d) => d.status === "failed" || d.status === "cancelled" },
    redeliver: { method: "POST", path: "/redeliver", when: (d) => !VS.isRunning(d.status) && d.delivery.parts_total > 0 },
  };
  let current = null; // the last /data answer
  let events = null;
  let pollTimer = null;
  let loading = null;

  function showProgress(snapshot) {
    const status = snapshot.status;
    $("progress-box").hidden = !VS.isRunning(status);
    const at = VS.STAGES.indexOf(status);
    $("stages").replaceChildren(
      ...VS.STAGES.filter((s) => s !== "done").map((stage, i) =>
        VS.el("li", { className: i < at ? "past" : i === at ? "current" : "", text: VS.LABELS[stage], dataset: { stage } }),
      ),
    );
    const progress = snapshot.progress || {};
    const fraction = Math.max(0, Math.min(1, progress.fraction || 0));
    $("meter").style.width = Math.round(fraction * 100) + "%";
    let detail = VS.progressDetail(progress);
    if (status === "delivering" && snapshot.delivery && snapshot.delivery.total) {
      detail = `${snapshot.delivery.sent} / ${snapshot.delivery.total}`;
    }
    const label = VS.LABELS[status] || status;
    $("progress-text").textContent = `${label} · ${Math.round(fraction * 100)}%${detail ? " · " + detail : ""}`;
    document.title = `${label} · vidscribe`;
  }

  function paragraphs(text) {
    return text
      .split(/\n\s*\n/)
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => VS.el("p", { text: p }));
  }

  function render(data) {
    current = data;
    const video = data.video || {};
    const title = video.title || (video.url || data.url).replace(/^https?:\/\//, "");
    $("title").textContent = title;
    const meta = [];
    if (video.platform) meta.push(video.platform);
    if (video.author) meta.push(video.author);
    if (video.duration) meta.push(VS.clock(video.duration));
    if (data.source) meta.push(VS.SOURCES[data.source] || data.source);
    const parts = [VS.badge(data.status), " "];
    meta.forEach((m) => parts.push(m, " · "));
    const link = video.url || data.url;
    if (/^https?:\/\//i.test(link)) {
      parts.push(VS.el("a", { href: link, target: "_blank", rel: "noopener noreferrer", text: "原视频 Original" }));
    } else if (meta.length) {
      parts.pop();
    }
    $("meta").replaceChildren(...parts);
    showActions(data);
    showProgress({ status: data.status, progress: data.progress, delivery: { sent: data.delivery.parts_sent, total: data.delivery.parts_total } });
    if (!VS.isRunning(data.status)) document.title = `${title} · vidscribe`;

    $("error-box").hidden = !data.error;
    if (data.error) $("error-text").textContent = `${data.error.message} [${data.error.code}]`;
    $("warnings").hidden = !data.warnings.length;
    $("warnings").replaceChildren(...data.warnings.map((w) => VS.el("li", { text: w })));
    const usage = Object.entries(data.llm_usage || {}).map(
      ([step, u]) => `${USAGE_STEPS[step] || step} ${u.model} ${u.prompt_tokens} + ${u.completion_tokens}`,
    );
    $("usage").hidden = !usage.length;
    $("usage").textContent = usage.length ? `LLM tokens（输入 + 输出 prompt + completion）：${usage.join(" · ")}` : "";

    $("summary-box").hidden = !data.summary;
    $("summary").textContent = data.summary || "";
    $("proofread-box").hidden = !data.proofread;
    $("proofread").replaceChildren(...paragraphs(data.proofread || ""));

    const segments = data.segments || [];
    $("transcript-box").hidden = !segments.length;
    $("segments").replaceChildren(
      ...segments.map((s) => VS.el("li", {}, VS.el("span", { className: "ts", text: VS.clock(s.start) }), VS.el("span", { text: s.text.trim() }))),
    );
    $("downloads-box").hidden = !segments.length;
    if (segments.length && !$("downloads").children.length) {
      $("downloads").replaceChildren(
        ...FORMATS.map(([format, label]) =>
          VS.el("a", { className: "button", href: `${base}/transcript?format=${format}`, download: "", text: label, dataset: { format } }),
        ),
      );
    }
  }

  // Buttons only for a visitor with an API token (the submit page stores it): the link alone
  // lets one read the task, not change it.
  function showActions(data) {
    let any = false;
    for (const [name, action] of Object.entries(ACTIONS)) {
      const button = document.querySelector(`button[data-action="${name}"]`);
      button.hidden = !VS.token() || !action.when(data);
      any = any || !button.hidden;
    }
    $("actions").hidden = !any;
  }

  async function act(name) {
    const action = ACTIONS[name];
    const url = "/api/task/" + encodeURIComponent(taskId) + action.path;
    try {
      const data = await VS.api(url, { method: action.method, auth: true });
      $("action-result").textContent = VS.LABELS[data.status] || data.status;
      await refresh();
      if (VS.isRunning(data.status) && !events) follow();
    } catch (error) {
      $("action-result").textContent = `${error.message} [${error.code}]`;
    }
  }

  // One /data request at a time; a request asked for meanwhile runs once after it.
  async function refresh() {
    if (loading) {
      loading.again = true;
      return;
    }
    loading = { again: false };
    try {
      render(await VS.api(base + "/data"));
    } catch (error) {
      if (error.status === 404) $("title").textContent = "任务不存在 Task not found";
    } finally {
      const again = loading.again;
      loading = null;
      if (again) refresh();
    }
  }

  function follow() {
    if (!window.EventSource) return poll();
    events = new EventSource(base + "/events");
    events.addEventListener("stage", (e) => {
      showProgress(JSON.parse(e.data));
      refresh(); // a new stage may bring a new text (transcript, proofread, summary)
    });
    events.addEventListener("progress", (e) => showProgress(JSON.parse(e.data)));
    events.addEventListener("end", () => {
      events.close(); // or EventSource would reconnect to a finished stream
      events = null;
      refresh();
    });
    events.onerror = () => {
      // EventSource retries by itself; once it gives up, poll instead.
      if (events && events.readyState === EventSource.CLOSED) {
        events = null;
        poll();
      }
    };
  }

  function poll() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      await refresh();
      if (current && VS.isRunning(current.status)) poll();
    }, 2000);
  }

  document.addEventListener("click", async (event) => {
    const actionButton = event.target.closest("button[data-action]");
    if (actionButton) return act(actionButton.dataset.action);
    const button = event.target.closest("button[data-copy]");
    if (!button || !current) return;
    const what = button.dataset.copy;
    const text = what === "transcript" ? current.transcript : current[what];
    try {
      await VS.copyText(text || "");
      button.textContent = "已复制 Copied ✓";
    } catch (error) {
      button.textContent = "复制失败 Failed";
    }
    setTimeout(() => (button.textContent = "复制 Copy"), 2000);
  });

  (async () => {
    await refresh();
    if (current && VS.isRunning(current.status)) follow();
  })();
})();
