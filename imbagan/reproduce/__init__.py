"""Reproduce a paper's table by name, under its own protocol and an honest one.

    python -m imbagan reproduce --list
    python -m imbagan reproduce aggan-table2 --budget quick --datasets mnist --repeats 1 --jobs 2

One spec per file (``aggan_table2.py``, ...), registered in ``SPECS`` below; ``spec`` says what a
spec holds, ``jobs`` how it becomes jobs and how a job runs, ``protocols`` the two ways of measuring,
``store`` the reproduction folder and the local / Ray backends, ``table`` the output. Importing this
package imports neither torch nor ray.
"""

from imbagan.reproduce import aggan_table2, aggan_table3, bagan_fig7, tiny

SPECS = {
    "aggan-table2": aggan_table2.SPEC,
    "aggan-table3": aggan_table3.SPEC,
    "bagan-fig7": bagan_fig7.SPEC,
    "tiny": tiny.SPEC,
}
