"""imbagan: see, with your own eyes, whether a GAN can restore the balance of an image dataset.

Run with `make app` (or `streamlit run app.py`). Pages live in pages/ and only draw what the
imbagan package computes; training and evaluation run in background processes.

The sidebar's page list is drawn here with st.page_link. Streamlit's automatic list is switched off
(.streamlit/config.toml: client.showSidebarNavigation = false): with a pages/ folder, the very first
request of a fresh server is otherwise drawn in the legacy multipage mode (a menu of file names,
no wide layout) until st.navigation has run once.
"""

import streamlit as st

st.set_page_config(page_title="imbagan", page_icon="⚖️", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/data.py", title="Data", icon="🗂️", url_path="data"),
    st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train"),
    st.Page("pages/evaluate.py", title="Evaluate", icon="📊", url_path="evaluate"),
    st.Page("pages/compare.py", title="Compare", icon="⚖️", url_path="compare"),
    st.Page("pages/reproduce.py", title="Reproduce", icon="📜", url_path="reproduce"),
    st.Page("pages/taxonomy.py", title="Taxonomy", icon="🧭", url_path="taxonomy"),
]

page = st.navigation(PAGES, position="hidden")
with st.sidebar:
    for p in PAGES:
        st.page_link(p)
page.run()
