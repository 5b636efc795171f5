// Submit page: POST /api/transcribe with the stored token, then open the task's view page.
"use strict";

(() => {
  const form = document.getElementById("submit-form");
  const urlInput = document.getElementById("url");
  const tokenInput = document.getElementById("token");
  const errorBox = document.getElementById("form-error");
  const button = document.getElementById("submit");

  tokenInput.value = VS.token();
  // ?url=… pre-fills the link (an iOS Shortcut or a bookmarklet can open the page that way).
  const shared = new URLSearchParams(location.search).get("url");
  if (shared) urlInput.value = shared;
  (urlInput.value && !tokenInput.value ? tokenInput : urlInput).focus();

  // Apps share "【title】 https://b23.tv/xyz 复制此链接…": keep the first link in the text.
  function extractUrl(text) {
    const match = text.match(/https?:\/\/[^\s，。！？、"'<>（）【】《》]+/i);
    return match ? match[0] : text.trim();
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const url = extractUrl(urlInput.value);
    const token = tokenInput.value.trim();
    if (!url) return showError("请粘贴视频链接。Paste a video link.");
    if (!token) {
      tokenInput.focus();
      return showError("请填写访问令牌。Enter the API token.");
    }
    VS.setToken(token);
    const options = {
      proofread: document.getElementById("proofread").checked,
      summary: document.getElementById("summary").checked,
    };
    const language = document.getElementById("language").value.trim();
    if (language) options.language = language;
    showError("");
    button.disabled = true;
    try {
      const accepted = await VS.api("/api/transcribe", { method: "POST", auth: true, body: { url, options } });
      location.assign("/view/" + encodeURIComponent(accepted.task_id));
    } catch (error) {
      button.disabled = false;
      if (error.status === 401) {
        tokenInput.focus();
        showError("访问令牌无效。Invalid API token.");
      } else if (error.status === 429) {
        showError("队列已满，请稍后再试。The queue is full; try again later.");
      } else {
        showError(`${error.message} [${error.code}]`);
      }
    }
  });
})();
