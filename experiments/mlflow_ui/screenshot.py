"""A sweep compared in the MLflow UI, as a PNG taken in headless Chromium (the README's picture).

    python experiments/mlflow_ui/screenshot.py mnist_search             # make ui-screenshot
    python experiments/mlflow_ui/screenshot.py mnist_search --uri sqlite:///mlflow.db \
        --out experiments/mlflow_ui/sweep-compare.png

Starts `mlflow server` over the tracking store on a free 127.0.0.1 port (without MLflow's GenAI
job runner; tests/helpers.py's, as the tests start it), takes the experiment's latest sweep (its parent run, tag sweep=true), opens MLflow's
compare-runs page for the sweep's finished children (the swept parameters against the objective
in a parallel-coordinates plot, then every parameter and metric side by side), waits until the
page shows every child's name, and saves a PNG (a temporary file, then renamed). Needs Debian's
chromium + chromium-driver (and Selenium, a dev dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from helpers import chromium, mlflow_server, save_screenshot  # noqa: E402

from digitrec.tracking import children_of, latest_sweep, open_store  # noqa: E402


def sweep_to_compare(client, experiment_name: str):
    """(experiment, parent run, its finished children) of the experiment's latest sweep."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise SystemExit(f"screenshot: no experiment {experiment_name!r} in {client.tracking_uri}")
    parent = latest_sweep(client, experiment.experiment_id)
    if parent is None:
        raise SystemExit(f"screenshot: experiment {experiment_name!r} has no sweep")
    children = [c for c in children_of(client, parent) if c.info.status == "FINISHED"]
    if len(children) < 2:
        raise SystemExit(
            f"screenshot: the latest sweep of {experiment_name!r} has "
            f"{len(children)} finished runs; nothing to compare"
        )
    return experiment, parent, children


def _click_text(driver, text: str) -> bool:
    """Click the first visible element whose own text is `text`; False when there is none."""
    for element in driver.find_elements("xpath", f"//*[normalize-space(text())='{text}']"):
        if element.is_displayed():
            element.click()
            return True
    return False


def arrange(driver, params: list[str], metric: str) -> None:
    """The model-training view, no assistant panel, and the parallel-coordinates plot showing
    the swept parameters against the objective (MLflow picks other columns by default). Each
    step is skipped when this MLflow version has no such control."""
    from selenium.webdriver.common.keys import Keys

    _click_text(driver, "Model training")
    for button in driver.find_elements("css selector", "button[aria-label='Close']"):
        if button.is_displayed() and button.location["x"] > driver.get_window_size()["width"] / 2:
            button.click()  # the assistant's panel, on the right
            break
    if not _click_text(driver, "Clear All"):
        return
    boxes = driver.find_elements("css selector", "input[role='combobox']")
    if len(boxes) < 2:
        return
    for box, values in ((boxes[0], params), (boxes[1], [metric])):
        for value in values:
            box.click()
            box.send_keys(value)
            time.sleep(0.3)
            box.send_keys(Keys.ENTER)
        box.send_keys(Keys.ESCAPE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", help="the MLflow experiment (study) holding the sweep")
    parser.add_argument(
        "--uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="tracking store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "sweep-compare.png")
    parser.add_argument("--size", default="1600x1100", help="window WIDTHxHEIGHT in pixels")
    parser.add_argument("--timeout", type=float, default=90, help="seconds to wait for the page")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    client = open_store(args.uri)
    experiment, parent, children = sweep_to_compare(client, args.experiment)
    swept = sorted(json.loads(parent.data.tags.get("search_space", "{}")))
    objective = parent.data.tags.get("objective", "val/sequence_accuracy").split(" (")[0]
    from selenium.webdriver.support.ui import WebDriverWait

    with mlflow_server(client.tracking_uri, REPO) as url:
        runs = json.dumps([c.info.run_id for c in children])
        query = urllib.parse.urlencode(
            {"runs": runs, "experiments": json.dumps([experiment.experiment_id])},
            quote_via=urllib.parse.quote,
        )
        page = f"{url}/#/compare-runs?{query}"
        driver = chromium(f"--window-size={width},{height}", "--hide-scrollbars")
        try:
            driver.get(page)
            names = [c.info.run_name for c in children]
            WebDriverWait(driver, args.timeout).until(
                lambda d: (
                    all(name in d.find_element("tag name", "body").text for name in names)
                    and d.find_elements("css selector", "svg .plot-container, .js-plotly-plot")
                )
            )
            arrange(driver, swept, objective)
            time.sleep(2)  # the plot's transition
            save_screenshot(driver, args.out)
        finally:
            driver.quit()
    print(
        f"wrote {args.out}: sweep {parent.info.run_name!r} of {args.experiment!r}, "
        f"{len(children)} runs compared ({page.replace(url, 'http://127.0.0.1:5000')})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
