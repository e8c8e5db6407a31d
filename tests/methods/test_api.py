"""`mer_bench.api` is all a plugin author imports: the contract, the rules and the registries,
without importing torch until the torch loop is asked for."""

import subprocess
import sys

from tests.conftest import REPO


def test_the_api_holds_the_contract_and_the_registries_and_imports_no_torch():
    check = (
        "import sys\n"
        "import mer_bench.api as api\n"
        "assert 'torch' not in sys.modules, 'importing the API imported torch'\n"
        "from mer_bench.methods.base import Method, Split, FitContext, Speed\n"
        "assert (api.Method, api.Split, api.FitContext, api.Speed) == "
        "(Method, Split, FitContext, Speed)\n"
        "assert api.SELECTION_RULES == ('last', 'val', 'oracle')\n"
        "assert 'skd_tstsan' in api.METHODS and 'casme2' in api.DATASETS\n"
        "assert 'flow_28' in api.VIEWS and 'casme2-5' in api.TASKS\n"
        "assert api.register_method.__self__ is api.METHODS\n"
        "assert api.register_view.__self__ is api.VIEWS\n"
        "from mer_bench.methods.training import TorchMethod\n"
        "assert api.TorchMethod is TorchMethod\n"
        "assert set(api.__all__) <= set(dir(api)) | {'TorchMethod', 'Recipe'}\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
