"""Home: what the app is for, where to start, and the runs in progress."""

import streamlit as st

from imbagan import catalog, preview, runs
from imbagan.config import TrainConfig
from ui import live

D = TrainConfig()  # the default path: what every page starts from

st.title("imbagan ⚖️")
st.markdown(
    "When one class of an image dataset is rare, a classifier learns to ignore it. "
    "imbagan lets you make a benchmark dataset imbalanced on purpose, train a balancing GAN "
    "(BAGAN and its relatives) in the background, watch it draw the rare classes, and judge "
    "whether the generated images help."
)
st.markdown("**Start here**, on the bundled *digits* set (no download, a few minutes on a laptop CPU):")
_rare = " and ".join(str(c) for c in D.minority)
st.page_link("pages/data.py", label=f"1. Data: drop {D.drop:g}% of the digits {_rare} and look at the counts",
             icon="🗂️")
st.page_link("pages/train.py", label=f"2. Train: launch {catalog.card(D.method).title or D.method} and watch one row "
                                     "per class fill in", icon="🏋️")
st.page_link("pages/evaluate.py", label="3. Evaluate (launched with the training): did the generated images beat the "
                                        "cheapest fix, and for which classes?", icon="📊")
st.page_link("pages/taxonomy.py", label="Background: the survey's taxonomy of imbalance and of the methods",
             icon="🧭")



_polling = any(r.state in runs.ACTIVE for r in runs.list_runs())


@st.fragment(run_every=live.REFRESH_S if _polling else None)
def runs_now() -> None:
    """The runs in progress (or the newest ones), refreshed while any is active; names open the run."""
    all_runs = runs.list_runs()
    active = [r for r in all_runs if r.state in runs.ACTIVE]
    st.subheader("Runs in progress" if active else "Recent runs")
    shown = active or all_runs[:5]
    if shown:
        live.runs_table(shown)
    else:
        st.caption("No runs yet.")
    if _polling and not active:
        st.rerun()  # the last active run ended: redraw once, without the timer


runs_now()


def _confirmed_delete(kind: str, names: list[str], labels: dict, delete, key: str) -> None:
    """A multiselect, a confirmation checkbox and a Delete button; each deletion reports on its own."""
    chosen = st.multiselect(f"{kind} to delete", names, format_func=labels.get, key=f"{key}.pick",
                            placeholder=f"choose {kind.lower()}")
    sure = st.checkbox(f"Yes, delete the {len(chosen)} chosen {kind.lower()} and all their files; this cannot be "
                       "undone.", key=f"{key}.sure", disabled=not chosen)
    if st.button(f"Delete {kind.lower()}", key=f"{key}.go", disabled=not (chosen and sure)):
        done = []
        for name in chosen:
            try:
                delete(name)
            except (ValueError, FileNotFoundError, OSError) as e:
                st.error(str(e))
            else:
                done.append(labels.get(name, name))
        for k in (f"{key}.pick", f"{key}.sure"):
            st.session_state.pop(k, None)
        if done:
            st.session_state["home.deleted"] = f"Deleted {', '.join(done)}."
        st.rerun()


with st.expander("Clean up: delete runs or uploaded folders"):
    if msg := st.session_state.pop("home.deleted", None):
        st.success(msg)
    every = runs.list_runs()
    stoppable = [r for r in every if r.state not in runs.ACTIVE]
    if len(stoppable) < len(every):
        st.caption(f"{len(every) - len(stoppable)} run(s) still training are not offered: stop them on the "
                   "Train page first.")
    if stoppable:
        _confirmed_delete("Runs", [r.id for r in stoppable], live.run_labels(stoppable, state=True),
                          runs.delete_run, "home.del_runs")
    else:
        st.caption("No finished runs to delete.")
    uploads = preview.list_uploads()
    if uploads:
        _confirmed_delete("Uploaded folders", [u.name for u in uploads], {u.name: u.name for u in uploads},
                          preview.delete_upload, "home.del_uploads")
