// The filter box: hides operations and models that do not contain the text typed; `?q=` in the
// address fills it, so a filtered view can be linked.
const box = document.getElementById('filter');
function applyFilter() {
  const q = box.value.trim().toLowerCase();
  for (const el of document.querySelectorAll('[data-search]')) {
    el.classList.toggle('hidden', q !== '' && !el.dataset.search.includes(q));
  }
}
if (box) {
  box.addEventListener('input', applyFilter);
  const q = new URLSearchParams(location.search).get('q');
  if (q) { box.value = q; applyFilter(); }
}
