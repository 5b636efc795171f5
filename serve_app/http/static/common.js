// Shared helpers of the vidscribe pages: API calls, token storage, DOM and formatting.
"use strict";

const VS = (() => {
  const TOKEN_KEY = "vidscribe.token";
  const STAGES = ["queued", "resolving", "downloading", "transcribing", "proofreading", "summarizing", "delivering", "done"];
  const LABELS = {
    queued: "排队中",
    resolving: "解析链接",
    downloading: "下载",
    transcribing: "转录",
    proofreading: "校对",
    summarizing: "总结",
    delivering: "发送到群",
    done: "完成",
    failed: "失败",
    cancelled: "已取消",
  };
  const SOURCES = { subtitles: "平台字幕", asr: "语音识别", cache: "缓存" };

  // localStorage throws in some private-browsing modes: the token then lives for the page only.
  let memoryToken = "";
  function token() {
    try {
      return localStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return memoryToken;
    }
  }
  function setToken(value) {
    memoryToken = value || "";
    try {
      if (value) localStorage.setItem(TOKEN_KEY, value);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      /* kept in memory only */
    }
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // fetch JSON; errors carry the API's {"error": {"code", "message"}}.
  async function api(path, options = {}) {
    const headers = {};
    if (options.auth && token()) headers.Authorization = "Bearer " + token();
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method: options.method || "GET",
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError(0, "network", "无法连接服务器 Cannot reach the server");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || "http_" + response.status, error.message || response.statusText);
    }
    return data;
  }

  // el("p", {className: "x", text: "hi"}, child, ...): text always goes in as text, never as HTML.
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function clock(seconds) {
    const total = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function size(bytes) {
    if (!bytes && bytes !== 0) return "?";
    const units = ["B", "KB", "MB", "GB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  }

  function when(unixSeconds) {
    return unixSeconds ? new Date(unixSeconds * 1000).toLocaleString() : "";
  }

  // "3.1 MB / 12.0 MB", "0:42 / 2:10", or "" when the stage reports no numbers.
  function progressDetail(progress) {
    if (!progress) return "";
    if (progress.downloaded_bytes !== undefined && progress.downloaded_bytes !== null) {
      const total = progress.total_bytes ? " / " + size(progress.total_bytes) : "";
      return size(progress.downloaded_bytes) + total;
    }
    if (progress.seconds !== undefined && progress.seconds !== null) {
      const total = progress.duration ? " / " + clock(progress.duration) : "";
      return clock(progress.seconds) + total;
    }
    return "";
  }

  function isRunning(status) {
    return status !== "done" && status !== "failed" && status !== "cancelled";
  }

  function badge(status) {
    const kind = status === "done" ? "done" : status === "failed" || status === "cancelled" ? "failed" : "running";
    return el("span", { className: "badge " + kind, text: LABELS[status] || status, dataset: { status } });
  }

  // Clipboard API needs a secure context (https or localhost); a LAN http page falls back.
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = el("textarea", { readonly: "" });
    area.style.position = "fixed"; // CSSOM, not a style attribute: the CSP forbids inline styles
    area.style.top = "-1000px";
    area.value = text;
    document.body.append(area);
    area.select();
    try {
      document.execCommand("copy");
    } finally {
      area.remove();
    }
  }

  return { STAGES, LABELS, SOURCES, ApiError, api, token, setToken, el, clock, size, when, progressDetail, isRunning, badge, copyText };
})();
