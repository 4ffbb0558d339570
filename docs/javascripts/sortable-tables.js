// Sortable leaderboard tables: click (or press Enter on) a column's header to sort the rows by
// it; again to reverse. Cells sort by their leading number when they have one ("45.2 ± 1.3" as
// 45.2), else by their text; a dash (no value) always sorts last. Numbers sort largest first on
// the first click. No library and no network: it works in the built site offline.
(function () {
  "use strict";
  var MISSING = /^(—|-|)$/;

  function key(cell) {
    var text = cell.textContent.trim();
    if (MISSING.test(text)) return null;
    var number = text.match(/^[-+]?\d+(\.\d+)?/);
    return number ? parseFloat(number[0]) : text.toLowerCase();
  }

  function compare(a, b) {
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1; // numbers before text
  }

  function sort(table, column) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var header = table.tHead.rows[0].cells[column];
    var keys = rows.map(function (row) { return key(row.cells[column]); });
    var numeric = keys.some(function (k) { return typeof k === "number"; });
    var current = header.getAttribute("aria-sort");
    var ascending = current ? current === "descending" : !numeric;
    var order = rows.map(function (row, i) { return i; });
    order.sort(function (i, j) {
      var a = keys[i], b = keys[j];
      if (a === null || b === null) return (a === null) - (b === null) || i - j;
      return (ascending ? compare(a, b) : compare(b, a)) || i - j;
    });
    order.forEach(function (i) { body.appendChild(rows[i]); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  function init() {
    document.querySelectorAll(".zsb-sortable table").forEach(function (table) {
      if (!table.tHead || !table.tBodies.length || table.dataset.zsbSortable) return;
      table.dataset.zsbSortable = "true";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
        th.tabIndex = 0;
        th.title = "Sort by " + th.textContent.trim();
        th.addEventListener("click", function () { sort(table, column); });
        th.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(table, column); }
        });
      });
    });
  }

  // mkdocs-material re-renders pages without a reload under instant navigation: hook its
  // document$ stream when it exists, else run once the page has loaded.
  if (typeof window.document$ !== "undefined") window.document$.subscribe(init);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
