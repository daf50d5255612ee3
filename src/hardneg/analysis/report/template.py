"""The page skeleton (a Python string, so it ships in every wheel without package-data rules).

`string.Template` placeholders: $title, $generated, $nav, $body. Everything inserted is escaped by the caller.
The inline script checks, once the page has loaded, that every image decoded, and writes the result into
`#image-check` (read by the headless-browser test, and shown at the bottom of the page).
"""

from __future__ import annotations

from string import Template

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
  :root { --fg: #1d232b; --muted: #5c6773; --line: #d9dee4; --accent: #2f6db5; --bg: #ffffff; --band: #f5f7fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
         background: var(--bg); }
  header { padding: 20px 32px 12px; border-bottom: 1px solid var(--line); background: var(--band); }
  header h1 { margin: 0 0 4px; font-size: 22px; }
  header p { margin: 0; color: var(--muted); }
  nav { margin-top: 10px; }
  nav a { color: var(--accent); margin-right: 16px; text-decoration: none; }
  main { padding: 8px 32px 40px; max-width: 1200px; }
  section { margin: 24px 0; }
  h2 { font-size: 18px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
  h3 { font-size: 15px; margin: 16px 0 6px; }
  table { border-collapse: collapse; margin: 8px 0 12px; font-variant-numeric: tabular-nums; }
  th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: right; }
  th { background: var(--band); }
  td:first-child, th:first-child { text-align: left; }
  .plots { display: flex; flex-wrap: wrap; gap: 16px; }
  figure { margin: 0; }
  figure img { max-width: 560px; width: 100%; border: 1px solid var(--line); }
  figcaption { color: var(--muted); font-size: 12px; }
  .note { color: var(--muted); }
  table.pairs td.pair { text-align: left; vertical-align: top; max-width: 360px; font-size: 13px; }
  .text { white-space: pre-wrap; }
  details.text summary { cursor: pointer; }
  footer { color: var(--muted); font-size: 12px; padding: 12px 32px; border-top: 1px solid var(--line); }
</style>
</head>
<body>
<header>
  <h1>$title</h1>
  <p>$generated</p>
  <nav>$nav</nav>
</header>
<main>
$body
</main>
<footer><span id="image-check" data-loaded="" data-total="">images: checking...</span></footer>
<script>
  window.addEventListener("load", function () {
    var images = document.querySelectorAll("img");
    var ok = 0;
    images.forEach(function (img) { if (img.complete && img.naturalWidth > 0) { ok += 1; } });
    var check = document.getElementById("image-check");
    check.setAttribute("data-loaded", String(ok));
    check.setAttribute("data-total", String(images.length));
    check.textContent = "images decoded: " + ok + " of " + images.length;
  });
</script>
</body>
</html>
""")
