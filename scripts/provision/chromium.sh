# Chromium (Debian's `chromium`) for the HTML report's browser tests (tests/report_html.rs):
# they render report.html headless, read the DOM back and screenshot it. fonts-dejavu-core
# gives the headless browser a font, or the screenshot has boxes where the text should be.
apt_install chromium fonts-dejavu-core
