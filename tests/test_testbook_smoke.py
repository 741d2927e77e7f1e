"""testbook 0.4.2 (2021) drives private nbclient APIs: this keeps checking that it still works
with the nbclient, jupyter_client and ipykernel versions installed beside it."""

import nbformat
from testbook import testbook


def test_testbook_executes_a_notebook_and_reads_values(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def square(x):\n    return x * x"),
                nbformat.v4.new_code_cell("answer = square(7)")]
    path = tmp_path / "smoke.ipynb"
    nbformat.write(nb, path)
    with testbook(str(path), execute=True, timeout=60) as tb:
        assert tb.ref("answer") == 49
        assert tb.ref("square")(5) == 25
