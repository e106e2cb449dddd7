// The activity page: asks /activity.json for new change-log lines every 2 s and puts them on top.
(function () {
  var list = document.getElementById("activity");
  var form = document.getElementById("activity-filter");
  var state = document.getElementById("activity-state");
  var after = null;
  function query() {
    var q = new URLSearchParams(new FormData(form));
    q.delete("paused");
    if (after !== null) q.set("after", after);
    return q.toString();
  }
  function tick() {
    if (form.elements.paused.checked) return;
    fetch("/activity.json?" + query(), {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        after = data.after;
        data.entries.forEach(function (e) {
          var li = document.createElement("li");
          li.textContent = e.line;
          li.dataset.app = e.app || "";
          list.insertBefore(li, list.firstChild);
        });
        while (list.children.length > 500) list.removeChild(list.lastChild);
        state.textContent = "Live: last checked " + new Date().toLocaleTimeString() + ".";
      })
      .catch(function (err) { state.textContent = "Cannot reach the daemon (" + err.message + "); retrying."; });
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  form.addEventListener("change", function () { after = null; list.textContent = ""; tick(); });
  tick();
  setInterval(tick, 2000);
})();
