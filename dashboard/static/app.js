// Conductor's dashboard: streams build and runtime logs into <pre
// data-stream="..."> elements with Server-Sent Events. Text only
// (textContent): a log line is never HTML.
"use strict";
document.querySelectorAll("pre[data-stream]").forEach(function (pre) {
  var keep = parseInt(pre.dataset.keep || "0", 10);
  var es = new EventSource(pre.dataset.stream);
  function add(text) {
    var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(document.createTextNode(text + "\n"));
    if (keep > 0) {
      while (pre.childNodes.length > keep) pre.removeChild(pre.firstChild);
    }
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }
  es.onmessage = function (e) { add(e.data); };
  es.addEventListener("end", function (e) {
    add(e.data);
    pre.dataset.done = "true";
    es.close();
  });
});
