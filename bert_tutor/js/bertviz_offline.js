// bert_tutor: one of bertviz's views, run with no CDN and no require.js (bert_tutor/bertviz_offline.py).
//
// bertviz's view scripts start with `require.config({paths: {d3: <CDN>, jquery: <CDN>}})` and then
// `requirejs(['jquery', 'd3'], function ($, d3) { ... })`. Here both names are local to this function:
// `requirejs` hands the callback the libraries defined just below, at once, so the view draws on the
// first run, offline, whether or not the page has a global require.js (JupyterLab 4 has none).
(function () {
  // d3-selection and d3-color, as published on npm (their UMD builds attach `d3` to `this`). Inside
  // this function `define`, `module` and `exports` are undefined, so they never register with a
  // module loader the page may have; `this` is `libraries`.
  var libraries = {};
  (function (define, module, exports) {
    /*@D3_SELECTION@*/
    /*@D3_COLOR@*/
  }).call(libraries);

  // The two more things of d3 that bertviz uses: an ordinal colour scale and its ten colours.
  var d3 = Object.assign({}, libraries.d3, {
    version: "d3-selection 1.4.2 + d3-color 1.4.1 (bert_tutor)",
    schemeCategory10: "1f77b4ff7f0e2ca02cd627289467bd8c564be377c27f7f7fbcbd2217becf"
      .match(/.{6}/g)
      .map(function (hex) { return "#" + hex; }),
    scaleOrdinal: function (range) {
      // Each new value takes the next colour, in order of first use, as d3's implicit domain does.
      var seen = new Map();
      return function (value) {
        if (!seen.has(value)) seen.set(value, seen.size);
        return range[seen.get(value) % range.length];
      };
    },
  });

  // The part of jQuery that bertviz's views call: $("css selector") or $("<tag />"), then
  // append, val, text, attr, empty, on and change.
  function Nodes(nodes) { this.nodes = nodes; }
  Nodes.prototype.append = function (other) {
    var parent = this.nodes[0];
    if (parent) other.nodes.forEach(function (child) { parent.appendChild(child); });
    return this;
  };
  Nodes.prototype.val = function (value) {
    if (arguments.length === 0) return this.nodes.length ? this.nodes[0].value : undefined;
    this.nodes.forEach(function (node) { node.value = String(value); });
    return this;
  };
  Nodes.prototype.text = function (text) {
    this.nodes.forEach(function (node) { node.textContent = String(text); });
    return this;
  };
  Nodes.prototype.attr = function (name, value) {
    this.nodes.forEach(function (node) { node.setAttribute(name, value); });
    return this;
  };
  Nodes.prototype.empty = function () {
    this.nodes.forEach(function (node) { node.replaceChildren(); });
    return this;
  };
  Nodes.prototype.on = function (type, handler) {
    this.nodes.forEach(function (node) { node.addEventListener(type, handler); });
    return this;
  };
  Nodes.prototype.change = function () {
    this.nodes.forEach(function (node) { node.dispatchEvent(new Event("change", { bubbles: true })); });
    return this;
  };
  function $(what) {
    var tag = /^\s*<\s*([a-zA-Z]+)/.exec(what);
    if (tag) return new Nodes([document.createElement(tag[1])]);
    return new Nodes(Array.prototype.slice.call(document.querySelectorAll(what)));
  }

  var modules = { d3: d3, jquery: $ };
  var require = { config: function () {} }; // the CDN paths bertviz sets are not needed
  function requirejs(names, callback) {
    callback.apply(null, names.map(function (name) {
      if (!(name in modules)) throw new Error("bert_tutor's offline bertviz has no library " + name);
      return modules[name];
    }));
  }

  /*@BERTVIZ_VIEW@*/
})();
