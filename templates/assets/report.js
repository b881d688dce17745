/* tbreport report: lazy chart rendering, TensorBoard smoothing, table sorting, run filter.
   Plain JavaScript, no dependencies besides plotly.js; never fetches anything. */
(function () {
  "use strict";

  var TYPED = {
    f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array,
    i2: Int16Array, u2: Uint16Array, i1: Int8Array, u1: Uint8Array
  };

  /* plotly's base64 typed-array JSON ({dtype, bdata}) -> typed array; anything else as is. */
  function decode(value) {
    if (!value || typeof value !== "object" || typeof value.bdata !== "string") return value;
    var Type = TYPED[value.dtype];
    if (!Type) return value;
    var binary = atob(value.bdata);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new Type(bytes.buffer);
  }

  /* TensorBoard's debiased EMA (classicSmoothing), as tbreport.report.smoothing.ema_smooth:
     non-finite points pass through, a constant series is returned as is, and a point standing
     for n original points (a thinned curve) decays the average by weight^n. */
  function smoothSeries(values, counts, weight, constant) {
    var out = new Float64Array(values.length);
    var isConstant = constant === true;
    if (constant === undefined && values.length) {
      isConstant = true;
      for (var k = 1; k < values.length; k++) {
        if (values[k] !== values[0]) { isConstant = false; break; }
      }
      if (values[0] !== values[0]) isConstant = false;  // NaN never equals itself
    }
    var last = 0, accumulated = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (isConstant || !isFinite(v)) { out[i] = v; continue; }
      var n = counts ? counts[i] : 1;
      var decay = Math.pow(weight, n);
      last = last * decay + (1 - decay) * v;
      accumulated += n;
      out[i] = last / (1 - Math.pow(weight, accumulated));
    }
    return out;
  }

  var slider = document.getElementById("smoothing");
  var sliderValue = document.getElementById("smoothing-value");
  var filterInput = document.getElementById("run-filter");
  var filterCount = document.getElementById("filter-count");
  var rendered = [];          // {div, spec, visible, weight}
  var hiddenAnchors = {};     // run anchor -> true when filtered out

  function currentWeight() {
    var w = slider ? parseFloat(slider.value) : 0.6;
    if (!(w >= 0)) w = 0;
    return Math.min(w, 0.999);
  }

  /* --- x axis: step, relative time or wall time ------------------------------------------ */
  /* A chart with spec.time maps any step to the wall time of the run's points at that step
     (linear between the pairs computed in Python, clamped at the ends). */
  function stepToSeconds(time, step) {
    var s = time.steps, w = time.walls, lo = 0, hi = s.length - 1;
    if (step <= s[0]) return w[0];
    if (step >= s[hi]) return w[hi];
    while (hi - lo > 1) {
      var mid = (lo + hi) >> 1;
      if (s[mid] <= step) lo = mid; else hi = mid;
    }
    var f = (step - s[lo]) / (s[hi] - s[lo]);
    return w[lo] + f * (w[hi] - w[lo]);
  }

  function mapX(spec, axis, x) {
    if (!axis || axis === "step" || !spec.time) return x;
    var out = new Array(x.length);
    for (var i = 0; i < x.length; i++) {
      var seconds = stepToSeconds(spec.time, x[i]);
      out[i] = axis === "wall" ? (spec.time.base + seconds) * 1000 : seconds / 3600;
    }
    return out;
  }

  function mapLayoutX(spec, axis) {
    var shapes = spec.layoutX.shapes.map(function (s) {
      if (s.xref !== "x") return s;
      var copy = Object.assign({}, s);
      copy.x0 = mapX(spec, axis, [s.x0])[0]; copy.x1 = mapX(spec, axis, [s.x1])[0];
      return copy;
    });
    var annotations = spec.layoutX.annotations.map(function (a) {
      if (a.xref !== "x") return a;
      var copy = Object.assign({}, a);
      copy.x = mapX(spec, axis, [a.x])[0];
      return copy;
    });
    return {shapes: shapes, annotations: annotations};
  }

  function setXAxis(item, axis) {
    var spec = item.spec;
    if (!spec.time) return;
    item.axis = axis;
    var xs = [], indices = [];
    spec.stepX.forEach(function (x, i) {
      if (x !== null) { xs.push(mapX(spec, axis, x)); indices.push(i); }
    });
    var smoothed = smoothedTraces(spec, currentWeight(), axis);
    item.weight = currentWeight();
    xs = xs.concat(smoothed.x);
    indices = indices.concat(smoothed.targets);
    var marks = mapLayoutX(spec, axis);
    var titles = {step: "step", relative: "relative time (hours)", wall: "wall time"};
    // One update of data and layout: the axis type follows the new x values.
    var update = {x: xs};
    if (smoothed.targets.length) {
      update.y = indices.map(function (i, k) {
        var j = k - (indices.length - smoothed.targets.length);
        return j >= 0 ? smoothed.y[j] : item.div.data[i].y;
      });
    }
    window.Plotly.update(item.div, update, {
      "xaxis.type": axis === "wall" ? "date" : "linear",
      "xaxis.title.text": titles[axis],
      "xaxis.autorange": true,
      shapes: marks.shapes,
      annotations: marks.annotations
    }, indices);
  }

  function smoothedTraces(spec, weight, axis) {
    var xs = [], ys = [], targets = [];
    spec.smooth.forEach(function (entry) {
      var x, y, n = null;
      if (entry.source !== undefined) {
        var src = spec.figure.data[entry.source];
        x = src.x; y = src.y;
      } else {
        x = entry.x; y = entry.y; n = entry.n;
      }
      if (entry.source !== undefined && spec.stepX) x = spec.stepX[entry.source] || x;
      xs.push(mapX(spec, axis, x));
      ys.push(smoothSeries(y, n, weight, entry.constant === true ? true : undefined));
      targets.push(entry.target);
    });
    return {x: xs, y: ys, targets: targets};
  }

  function loadSpec(id) {
    var node = document.getElementById(id);
    var spec = JSON.parse(node.textContent);
    spec.figure.data.forEach(function (trace) {
      trace.x = decode(trace.x);
      trace.y = decode(trace.y);
    });
    spec.smooth.forEach(function (entry) {
      if (entry.source === undefined) {
        entry.x = decode(entry.x); entry.y = decode(entry.y); entry.n = decode(entry.n);
      }
    });
    if (spec.time) {
      spec.time.steps = decode(spec.time.steps);
      spec.time.walls = decode(spec.time.walls);
      // The step x of every raw trace, kept so the axis can switch back and forth.
      var smoothedTargets = {};
      spec.smooth.forEach(function (entry) { smoothedTargets[entry.target] = true; });
      spec.stepX = spec.figure.data.map(function (trace, i) {
        return smoothedTargets[i] ? null : trace.x;
      });
      spec.layoutX = {
        shapes: spec.figure.layout.shapes || [],
        annotations: spec.figure.layout.annotations || []
      };
    }
    return spec;
  }

  function applyTraceFilter(div, spec) {
    var update = [], indices = [];
    spec.figure.data.forEach(function (trace, i) {
      if (typeof trace.meta === "string") {
        indices.push(i);
        update.push(hiddenAnchors[trace.meta] ? false : true);
      }
    });
    if (indices.length) window.Plotly.restyle(div, {visible: update}, indices);
  }

  function render(div) {
    if (div.getAttribute("data-state")) return;
    div.setAttribute("data-state", "rendering");
    try {
      var spec = loadSpec(div.getAttribute("data-chart"));
      var smoothed = smoothedTraces(spec, currentWeight(), "step");
      smoothed.targets.forEach(function (t, i) {
        spec.figure.data[t].x = smoothed.x[i];
        spec.figure.data[t].y = smoothed.y[i];
      });
      spec.figure.data.forEach(function (trace) {
        if (typeof trace.meta === "string" && hiddenAnchors[trace.meta]) trace.visible = false;
      });
      window.Plotly.newPlot(div, spec.figure.data, spec.figure.layout, {
        responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"]
      });
      var item = {div: div, spec: spec, visible: true, weight: currentWeight(), axis: "step"};
      rendered.push(item);
      div.tbreportItem = item;
      if (visibility) visibility.observe(div);
      div.setAttribute("data-state", "rendered");
    } catch (err) {
      div.setAttribute("data-state", "failed");
      div.textContent = "This chart could not be drawn: " + err;
      throw err;
    }
  }

  function resmoothItem(item, weight) {
    if (!item.spec.smooth.length || item.weight === weight) return;
    var s = smoothedTraces(item.spec, weight, item.axis);
    window.Plotly.restyle(item.div, {x: s.x, y: s.y}, s.targets);
    item.weight = weight;
  }

  /* Only charts near the viewport follow the slider at once; the others catch up when they
     scroll back into view, so the slider stays fluid after every chart has been drawn. */
  function resmooth() {
    var weight = currentWeight();
    if (sliderValue) sliderValue.textContent = weight.toFixed(3);
    rendered.forEach(function (item) {
      if (item.visible) resmoothItem(item, weight);
    });
  }

  var visibility = null;

  function renderAll() {
    Array.prototype.forEach.call(document.querySelectorAll("div.plot[data-chart]"), render);
  }

  function setUpCharts() {
    var plots = document.querySelectorAll("div.plot[data-chart]");
    if (!plots.length) return;
    if (!window.Plotly) {
      document.getElementById("plotly-missing").hidden = false;
      Array.prototype.forEach.call(plots, function (div) {
        div.className += " plot-placeholder";
        div.textContent = "Chart unavailable: plotly.js did not load.";
      });
      return;
    }
    if (!("IntersectionObserver" in window)) { renderAll(); return; }
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          observer.unobserve(entry.target);
          render(entry.target);
        }
      });
    }, {rootMargin: "400px 0px"});
    visibility = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        var item = entry.target.tbreportItem;
        if (!item) return;
        item.visible = entry.isIntersecting;
        if (item.visible) resmoothItem(item, currentWeight());
      });
    }, {rootMargin: "200px 0px"});
    Array.prototype.forEach.call(plots, function (div) { observer.observe(div); });
    window.addEventListener("beforeprint", function () {
      renderAll();
      var weight = currentWeight();
      rendered.forEach(function (item) { resmoothItem(item, weight); });
    });
  }

  /* --- sortable tables ------------------------------------------------------------------ */
  var RANKS = {
    status: {error: 0, warning: 1, "not-assessed": 2, info: 3, healthy: 4},
    severity: {error: 0, warning: 1, info: 2}
  };

  function cellKey(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var key = cell.getAttribute("data-sort");
    return key === null ? cell.textContent.trim() : key;
  }

  function compareKeys(a, b, type) {
    if (a === "" && b === "") return 0;
    if (a === "") return 1;   // missing values last, whatever the direction
    if (b === "") return -1;
    if (RANKS[type]) return (RANKS[type][a] - RANKS[type][b]) || 0;
    var na = Number(a), nb = Number(b);
    if (type !== "text" && !isNaN(na) && !isNaN(nb)) return na - nb;
    return a.localeCompare(b, undefined, {numeric: true});
  }

  function setUpSorting() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      var headers = table.tHead.rows[0].cells;
      Array.prototype.forEach.call(headers, function (th, index) {
        th.addEventListener("click", function () {
          var ascending = th.getAttribute("aria-sort") !== "ascending";
          Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
          th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
          var type = th.getAttribute("data-type") || "auto";
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (r1, r2) {
            var a = cellKey(r1, index), b = cellKey(r2, index);
            if (a === "" || b === "") return compareKeys(a, b, type);
            var c = compareKeys(a, b, type);
            return ascending ? c : -c;
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    });
  }

  /* --- run filter (a regular expression, as TensorBoard's) ------------------------------ */
  function applyFilter() {
    var text = filterInput ? filterInput.value : "";
    var regex = null;
    filterInput.classList.remove("invalid");
    filterInput.removeAttribute("aria-invalid");
    filterInput.title = "";
    if (text) {
      try { regex = new RegExp(text, "i"); } catch (err) {
        // Say so instead of silently keeping the previous filter.
        filterInput.classList.add("invalid");
        filterInput.setAttribute("aria-invalid", "true");
        var message = "invalid regular expression: " + (err && err.message ? err.message : err);
        filterInput.title = message;
        if (filterCount) { filterCount.textContent = message; filterCount.classList.add("invalid"); }
        return;
      }
    }
    if (filterCount) filterCount.classList.remove("invalid");
    hiddenAnchors = {};
    var total = 0, shown = 0;
    Array.prototype.forEach.call(document.querySelectorAll("section.run[data-run]"), function (section) {
      var match = !regex || regex.test(section.getAttribute("data-run"));
      total += 1;
      if (match) shown += 1; else hiddenAnchors[section.id] = true;
      section.classList.toggle("filtered-out", !match);
    });
    Array.prototype.forEach.call(document.querySelectorAll("tr[data-run]"), function (row) {
      var match = !regex || regex.test(row.getAttribute("data-run"));
      row.classList.toggle("filtered-out", !match);
    });
    if (filterCount) filterCount.textContent = regex ? shown + " of " + total + " runs" : "";
    rendered.forEach(function (item) { applyTraceFilter(item.div, item.spec); });
  }

  function debounce(fn) {
    var pending = false;
    return function () {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(function () { pending = false; fn(); });
    };
  }

  function setUpAxisSwitches() {
    Array.prototype.forEach.call(document.querySelectorAll("select.x-axis"), function (select) {
      select.addEventListener("change", function () {
        var div = document.querySelector('div.plot[data-chart="' + select.dataset.chart + '"]');
        if (!div || !window.Plotly) return;
        render(div);
        if (div.tbreportItem) setXAxis(div.tbreportItem, select.value);
      });
    });
  }

  setUpSorting();
  setUpAxisSwitches();
  if (filterInput) filterInput.addEventListener("input", debounce(applyFilter));
  if (slider) slider.addEventListener("input", debounce(resmooth));
  setUpCharts();
  if (sliderValue) sliderValue.textContent = currentWeight().toFixed(3);
  if (filterInput && filterInput.value) applyFilter();  // a reload keeps the typed filter

  window.tbreport = {
    smoothSeries: smoothSeries,
    renderAll: renderAll,
    renderedCount: function () { return rendered.length; },
    setXAxis: function (div, axis) { render(div); setXAxis(div.tbreportItem, axis); }
  };
})();
