// Sends a "Try it" panel's request with `fetch` and shows the answer as it arrives. `data-state`
// on the panel says `sending`, then `done` or `failed`, for a test to wait on.
for (const form of document.querySelectorAll('form.try-form')) {
  const panel = form.closest('.try');
  const key = form.querySelector('.try-key');
  key.value = sessionStorage.getItem('aoai-gateway-key') || '';
  key.addEventListener('input', () => sessionStorage.setItem('aoai-gateway-key', key.value));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const out = panel.querySelector('.try-out');
    const status = out.querySelector('.try-status');
    const shownHeaders = out.querySelector('.try-headers');
    const shownBody = out.querySelector('.try-response');
    let path = panel.dataset.path;
    const query = new URLSearchParams();
    for (const input of form.querySelectorAll('[data-in]')) {
      if (input.dataset.in === 'path') {
        path = path.replace('{' + input.dataset.name + '}', encodeURIComponent(input.value));
      } else if (input.value !== '') {
        query.append(input.dataset.name, input.value);
      }
    }
    const headers = { 'api-key': key.value };
    const init = { method: panel.dataset.method, headers };
    const body = form.querySelector('.try-body');
    if (body && body.value.trim() !== '') {
      headers['content-type'] = body.dataset.media;
      init.body = body.value;
    }
    out.hidden = false;
    panel.dataset.state = 'sending';
    status.textContent = 'Sending…';
    shownHeaders.textContent = '';
    shownBody.textContent = '';
    try {
      const response = await fetch(path + (query.size ? '?' + query : ''), init);
      status.textContent = response.status + ' ' + response.statusText;
      shownHeaders.textContent = [...response.headers].map(([k, v]) => k + ': ' + v).join('\n');
      const type = response.headers.get('content-type') || '';
      const textual = /json|text|event-stream|xml/.test(type) || type === '';
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let text = '';
      let bytes = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.length;
        if (textual) {
          text += decoder.decode(value, { stream: true });
          shownBody.textContent = text;
        } else {
          shownBody.textContent = bytes + ' bytes of ' + type;
        }
      }
      if (textual && /json/.test(type)) {
        try { shownBody.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch (_) {}
      }
      panel.dataset.state = 'done';
    } catch (error) {
      status.textContent += ' — failed: ' + error.message;
      panel.dataset.state = 'failed';
    }
  });
}
