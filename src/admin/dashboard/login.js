// The login page: a token in the URL fragment (#token=...) is posted as the form would be, and
// the fragment is removed from the address bar and history first.
'use strict';
(function () {
  if (/[?&]login=failed\b/.test(location.search)) document.getElementById('failed').hidden = false;
  const m = /^#token=(.+)$/.exec(location.hash);
  if (m === null) return;
  history.replaceState(null, '', location.pathname + location.search);
  document.getElementById('token').value = decodeURIComponent(m[1]);
  document.getElementById('login').submit();
})();
