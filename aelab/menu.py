"""The app's menu and its page-wide CSS: what app.py needs before the first page runs.

Nothing heavy is imported here (no torch, no aelab.ui): app.py draws the menu with these before it imports the rest.
Until then a first visit shows Streamlit's own menu of the file names in pages/ (for 3 s after a server start, while
aelab.ui imported torch).
"""

# The app's pages, in menu order: (file, title, Material icon, one line for the Home page). app.py builds the
# navigation from this list and Home links to every page from it. Material icons ship with Streamlit, so they show in
# any browser (emoji need an emoji font).
PAGES = [
    ("pages/home.py", "Home", ":material/home:", "what aelab does and the models at hand"),
    ("pages/train.py", "Train", ":material/model_training:",
     "choose a variant and its options, train in the background, watch the loss"),
    ("pages/models.py", "Models", ":material/inventory_2:",
     "every checkpoint: metrics, history, reconstructions, features; upload, download, rename, delete"),
    ("pages/compare.py", "PCA vs autoencoder", ":material/compare:",
     "maps, reconstructions, error against latent size and kNN accuracy next to PCA"),
    ("pages/latent_map.py", "Latent map", ":material/scatter_plot:",
     "UMAP or PCA map of the codes, by class or by error; select points to see their images and neighbours; export"),
    ("pages/interpolate.py", "Interpolate", ":material/swap_horiz:",
     "walk between two images in code space; sweep a coordinate, or set the code by hand"),
    ("pages/draw.py", "Draw", ":material/draw:",
     "draw a digit (or a shirt, a letter...) and see how the model encodes and rebuilds it"),
    ("pages/denoise.py", "Denoise", ":material/auto_fix_high:", "add noise to images, or upload your own, and clean them"),
    ("pages/generate.py", "Generate", ":material/casino:",
     "sample new images from a VAE (by class for a conditional one), or from any model's codes"),
    ("pages/anomalies.py", "Anomalies", ":material/troubleshoot:",
     "reconstruction error as an anomaly score: a class the model never saw, or the odd ones out of your images; "
     "what a threshold gets wrong"),
]


# A row of images (st.image given a list) wraps in the browser when it is wider than the page's column: 10
# reconstructions went 9 + 1 at 1280 px and 6 + 4 at 1024. Rows instead shrink their images to fit, keeping their
# shape, and their captions are in a smaller font (a class name was split mid-word: "Trouse/r", "Pullov/er" at 800
# px); app.py adds this to every page. So do the figures of st.metric, whose labels, values and deltas were cut
# with an ellipsis in narrow columns ("Parame…", "19.6 …" at 800 px): labels and deltas wrap, values shrink. And the
# Draw page's canvas (240 px, a fixed size) keeps a column as wide as itself: in an 800 px window its column was 205
# px and hid the canvas's right side; the results beside it take the narrower column instead, and go under the canvas
# where the board is under 560 px wide (at 800 px, beside it, they were 200 px and the map tiny). Columns made by
# wrapping_columns go one under the other when they would be narrower than 300 px: at 800 px two model pickers side
# by side cut their names ("mnist-denoising-conv (32-d) · g…"), and two maps were 230 px wide; the Train form's
# fields wrap to the next row under 130 px (at 800 px its four columns cut "Over…", "constan", "Augmentatio/n").
# A table wider than the page scrolls sideways, and nothing showed that it does (Streamlit shows its scroll bar only
# under the mouse; macOS hides them all): ui.model_table puts a hint in a container keyed "tablehint_<width>_", shown
# when the table's box is narrower than that width, the table's own rounded to TABLE_WIDTHS (a CSS container query).
TABLE_WIDTHS = range(500, 2001, 25)
IMAGE_ROW_CSS = """<style>
div.stImage:has(> [data-testid="stImageContainer"] + [data-testid="stImageContainer"]) { flex-wrap: nowrap; }
div.stImage > [data-testid="stImageContainer"] { min-width: 0; }
[class*="st-key-imgwrap_"] div.stImage { flex-wrap: wrap !important; }
[class*="st-key-imgwrap_"] div.stImage > [data-testid="stImageContainer"] { flex-shrink: 0; }
div.stImage > [data-testid="stImageContainer"] img { height: auto; }
div.stImage [data-testid="stCaptionContainer"] p { white-space: pre-line; }
div.stImage:has(> [data-testid="stImageContainer"] + [data-testid="stImageContainer"])
  [data-testid="stImageCaption"] * { font-size: 0.75rem; }
.st-key-denoise_headers p { font-size: 0.85rem; overflow-wrap: normal; word-break: normal; hyphens: none; }
.st-key-denoise_grid [data-testid="stHorizontalBlock"] { flex-wrap: nowrap !important; gap: 0.5rem; }
.st-key-denoise_grid [data-testid="stColumn"] { min-width: 0 !important; flex: 1 1 0 !important; width: auto !important; }
.st-key-denoise_grid [data-testid="stImageContainer"] img { max-width: 100%; height: auto; }
@media (max-width: 640px) { .st-key-denoise_headers p { font-size: 0.7rem; overflow-wrap: anywhere; }
  .st-key-denoise_grid [data-testid="stImageCaption"] * { font-size: 0.7rem; } }
[data-testid="stMetric"] { container-type: inline-size; }
@media (max-width: 640px) {
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"]) > [data-testid="stColumn"] {
    min-width: calc(50% - 0.5rem) !important; flex: 1 1 calc(50% - 0.5rem) !important; }
  [data-testid="stColumn"]:has([class*="st-key-wrap130_"]) { min-width: 100% !important; }
  .stPlotlyChart .modebar-container { display: none; }
  [class*="st-key-latent_map_"] .modebar-container { display: block; }
}
@media (pointer: coarse) {  /* a finger's target: Streamlit's 12 px slider thumb was fiddly on a phone */
  [data-testid="stSlider"] div:has(> div > input[type="range"]) { width: 1.5rem; height: 1.5rem; }
}
[data-testid="stMetricValue"] > div { font-size: min(2.25rem, 24cqi); }
[data-testid="stMetricLabel"] p { font-size: min(0.875rem, 12cqi); }
[data-testid="stMetricLabel"] *, [data-testid="stMetricDelta"] * { white-space: normal !important; }
[data-testid="stColumn"]:has(.st-key-draw_pad) { min-width: 244px; }
.st-key-draw_board { container-type: inline-size; }
.st-key-draw_quick { display: none; }
@container (max-width: 559px) {
  .st-key-draw_board .st-key-draw_quick { display: block; }
  .st-key-draw_board [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .st-key-draw_pad) {
    flex-wrap: wrap !important; }
  .st-key-draw_board [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .st-key-draw_pad)
    > [data-testid="stColumn"] { min-width: 100%; }
}
[data-testid="stColumn"]:has([class*="st-key-wrap300_"]) { min-width: min(300px, 100%); }
[data-testid="stColumn"]:has([class*="st-key-wrap130_"]) { min-width: min(130px, 100%); flex-grow: 0; }
[class*="st-key-tablebox_"] { container-type: inline-size; }
[class*="st-key-tablehint_"] { display: none; }
""" + "".join(f'@container (max-width: {w - 0.5}px) {{ [class*="st-key-tablehint_{w}_"] {{ display: block; }} }}\n'
              for w in TABLE_WIDTHS) + """@container (min-width: 560px) {
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] .st-key-draw_pad) { flex-wrap: nowrap; }
}
</style>"""
