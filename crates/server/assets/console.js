// The console's own script (not third-party, not minified): draws every
// element with a `data-chart` attribute (an ECharts option as JSON) once the
// page loads and again after htmx swaps new content in.
(function () {
  'use strict';

  function draw(root) {
    if (typeof echarts === 'undefined') return;
    root.querySelectorAll('[data-chart]').forEach(function (el) {
      var option;
      try {
        option = JSON.parse(el.getAttribute('data-chart'));
      } catch (e) {
        el.textContent = '—';
        return;
      }
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: 'svg' });
      option.animation = false;
      chart.setOption(option, true);
      el.setAttribute('data-drawn', 'true');
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    draw(document);
    window.addEventListener('resize', function () {
      document.querySelectorAll('[data-drawn]').forEach(function (el) {
        var chart = echarts.getInstanceByDom(el);
        if (chart) chart.resize();
      });
    });
  });
  document.addEventListener('htmx:afterSwap', function (event) {
    draw(event.target);
  });
})();
