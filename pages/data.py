"""Data: pick a dataset (or upload your own), make it imbalanced, see counts and real images per class.

"Train on this data" hands the choice to the Train page as ``st.session_state["data_choice"]`` (TrainConfig
data fields: dataset, data_root, image_size, channels, imbalance, ir, drop, minority, majority, counts, seed).
"""

from __future__ import annotations

import logging

import streamlit as st

from imbagan import preview as pv
from imbagan.config import TrainConfig
from imbagan.imbalance import imbalance_ratio
from imbagan.imbalance import minority_classes
from ui import charts, widgets

log = logging.getLogger("imbagan.pages.data")

st.title("Data and imbalance")
st.markdown("Choose a dataset, make it imbalanced on purpose, and look at what a GAN would have to work "
            "with: how many images each class keeps, and what they look like.")


@st.cache_data(show_spinner="Drawing real images of every class…", max_entries=16, ttl=600)
def _grid(fields: dict, per_class: int) -> bytes:
    return pv.class_grid(TrainConfig.from_dict(fields), per_class)


def _use_folder(path: str) -> None:
    """Select an image folder in the dataset widgets below (runs before they are drawn).

    The imbalance starts at "none", so the folder first shows its own counts (the step profile, the
    default, needs exactly 10 classes).
    """
    st.session_state["data.dataset"] = "imagefolder"
    st.session_state["data.root"] = path
    st.session_state["data.imbalance"] = "none"


with st.expander("Your own images: upload a .zip of class folders", expanded=False):
    st.caption(f"One folder per class, each holding images ({', '.join(pv.IMAGE_EXTENSIONS)}), e.g. "
               "cat/001.png, dog/001.png; optionally inside train/ and test/. At most "
               f"{pv.MAX_COMPRESSED // 1024 ** 2} MB zipped, {pv.MAX_UNCOMPRESSED // 1024 ** 2} MB unzipped and "
               f"{pv.MAX_FILES:,} images. It is unpacked into {pv.uploads_root()}. A folder already on this "
               "machine needs no upload: choose *Image folder* below and type its path.")
    up = st.file_uploader("Zip of class folders", type=["zip"], key="data.upload")
    if up is not None and st.button("Extract and use", key="data.extract"):
        try:
            u = pv.extract_zip(up, up.name)
        except ValueError as e:
            st.error(str(e))
        except Exception as e:  # extract_zip turns zip trouble into ValueError; anything else, one line too
            log.exception("upload of %s failed", up.name)
            st.error(pv.error_sentence(e))
        else:
            _use_folder(str(u.path))
            st.success(f"Extracted {u.images:,} images in {len(u.classes)} classes ({', '.join(u.classes)}) "
                       f"to {u.path}" + (f"; skipped {u.skipped} other file(s)." if u.skipped else "."))
    uploads = pv.list_uploads()
    if uploads:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        chosen = c1.selectbox("Uploaded folders", uploads, format_func=lambda p: p.name, key="data.uploaded")
        c2.button("Use this folder", key="data.use_upload", on_click=_use_folder, args=(str(chosen),))

left, right = st.columns([1, 2])
with left:
    # Widget state is dropped when the user leaves the page; the last choice brings it back on return.
    fields = widgets.data_widgets("data", defaults=st.session_state.get("data_page.last"))
    per_class = st.slider("Images per class in the grid", 4, 16, 8, key="data.per_class")
cfg, error = widgets.build_config(fields)
error = error or pv.data_root_error(cfg)
if cfg is not None and not error:
    st.session_state["data_page.last"] = pv.data_fields(cfg)

with right:
    if error:
        st.error(error)
        st.stop()
    try:
        names, before, after = widgets.preview(cfg)
        ir = imbalance_ratio(after)
    except (ValueError, FileNotFoundError) as e:
        st.error(widgets.page_error(e))
        st.stop()
    except Exception as e:  # e.g. a folder we may not read: one sentence here, the traceback in the log
        log.exception("preview failed")
        st.error(pv.error_sentence(e))
        st.stop()
    kept = [n for n in after if n > 0]
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Imbalance ratio", f"{ir:.1f}", help="Images of the largest class / images of the smallest class kept.")
    m2.metric("Training images", f"{sum(after):,}", delta=f"{sum(after) - sum(before):,}", delta_color="off")
    m3.metric("Classes", len(kept))
    m4.metric("Minority classes", len(minority_classes(kept)), help="Fewer than half the largest class's images.")
    st.plotly_chart(charts.counts_figure(names, before, after, log_y=ir > 20), key="data.counts")
    st.caption("Grey: images available in the training split; blue: images kept after the imbalance. "
               "The test split stays balanced and untouched.")
    if st.button("Train on this data", type="primary", key="data.train"):
        st.session_state["data_choice"] = pv.data_fields(cfg)
        st.switch_page("pages/train.py")

st.subheader("Real images, one row per class")
try:
    png = _grid(pv.data_fields(cfg), per_class)
except (ValueError, FileNotFoundError) as e:
    st.error(widgets.page_error(e))
except Exception as e:
    log.exception("real-image grid failed")
    st.error(pv.error_sentence(e))
else:
    st.image(png, caption=f"{per_class} training images per class after the imbalance, picked at random; the "
             "count is in brackets, and ★ rows are minority classes (fewer than half the largest class's images). "
             "Grey cells: the class has fewer images than that.")
