#!/usr/bin/env python3
"""The service's dashboard in a real browser: headless Chromium (Debian's chromium and chromium-driver, driven by
python3-selenium) opens `dojo serve`'s page with a tenant's token, and checks that a train job submitted through the
API appears, progresses (its loss curve grows) and finishes on the page, with the slots it held shown while it runs;
and that a sim job on an ExaPOD, chosen on the page, shows the machine's tiles with those its plan uses marked. The
page submits nothing itself. Screenshots are kept in OUT_DIR/dashboard.png and dashboard_tiles.png.

Usage: dashboard_test.py DOJO OUT_DIR     (exit 77: the browser is missing, and the message says what to install)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from service_process import ServeProcess


def need(condition, message):
    if not condition:
        sys.exit("dashboard test: " + message)


def main():
    dojo, out_dir = sys.argv[1], sys.argv[2]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("dashboard test: skipped: python3-selenium is not installed (scripts/setup.sh installs it)")
        return 77
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        print("dashboard test: skipped: chromium and chromium-driver are not installed (scripts/setup.sh installs them)")
        return 77
    state = tempfile.mkdtemp(prefix="dojo-dashboard-")
    server = None
    driver = None
    try:
        token = subprocess.run([dojo, "tenant", "add", "alice", "--state", state, "--max-slots", "2"],
                               capture_output=True, text=True, check=True).stdout.strip()
        server = ServeProcess(dojo, state, ["--slots", "2"])
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        job = server.submit(token, {"kind": "train", "slots": 2, "args": {"model": "mlp", "epochs": 3,
                                                                          "train_limit": 57600, "test_limit": 200}})

        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,1100"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.get(f"{base}/#token={token}")

        def page():  # read in one script: the page redraws its rows every second
            return driver.execute_script("""
                const row = document.getElementById(arguments[0]);
                return {state: row ? row.querySelector(".state").textContent : null,
                        busy: document.querySelectorAll("#slots .slot.busy").length,
                        points: +(document.getElementById("loss").dataset.points || 0),
                        log: document.getElementById("log").textContent,
                        error: document.getElementById("error").textContent};""", f"job-{job}")

        deadline = time.time() + 60
        seen_running, most_points, busy_slots = False, 0, 0
        while time.time() < deadline:
            now = page()
            if now["state"] == "running":
                seen_running = True
                busy_slots = max(busy_slots, now["busy"])
            most_points = max(most_points, now["points"])
            if now["state"] == "succeeded":
                break
            time.sleep(0.2)
        time.sleep(1.5)  # one more refresh: the finished job's whole curve
        last = page()
        most_points = max(most_points, last["points"])
        driver.save_screenshot(os.path.join(out_dir, "dashboard.png"))
        need(last["state"] == "succeeded", f"job {job} did not show as succeeded within 60 s (last: {last['state']})")
        need(seen_running, "the job was never shown running")
        need(busy_slots == 2, f"while it ran the page showed {busy_slots} busy slots; the job holds 2")
        need(most_points >= 3, f"the loss curve has {most_points} points; it should grow as the job trains")
        need("epoch 3/3" in last["log"], "the job's log is not on the page")
        need(last["error"] == "", "the page shows an error: " + last["error"])
        print(f"dashboard test: job {job} appeared, ran on 2 slots, drew {most_points} loss points and finished; "
              f"screenshot in {os.path.join(out_dir, 'dashboard.png')}")

        # A sim job on an ExaPOD: once it has succeeded and is chosen, the page draws the machine's tiles and marks
        # those its plan uses, as the API's placement says.
        sim = server.submit(token, {"kind": "sim", "args": {"model": "resnet50", "machine": "exapod", "batch": 4096}})
        deadline = time.time() + 60
        tiles = {}
        while time.time() < deadline:  # in one script each time: the page redraws its rows every second
            tiles = driver.execute_script("""
                const row = document.getElementById(arguments[0]);
                if (row && row.querySelector(".state").textContent === "succeeded") { row.click(); }
                return {all: document.querySelectorAll("#tiles .tile").length,
                        busy: document.querySelectorAll("#tiles .tile.busy").length,
                        title: document.getElementById("tiles-title").textContent};""", f"job-{sim}")
            if tiles["all"] > 0:
                break
            time.sleep(0.3)
        placement = server.call(token, "GET", f"/v1/jobs/{sim}/placement")
        need(tiles.get("all") == placement["tiles"] == 120,
             f"the page drew {tiles.get('all')} tiles; an ExaPOD has {placement['tiles']}")
        need(tiles["busy"] == len(placement["tiles_used"]) > 0,
             f"the page marks {tiles['busy']} tiles busy; the plan uses {len(placement['tiles_used'])}")
        driver.save_screenshot(os.path.join(out_dir, "dashboard_tiles.png"))
        print(f"dashboard test: sim job {sim} on an ExaPOD shown on {tiles['busy']} of its 120 tiles "
              f"({tiles['title']})")
        return 0
    finally:
        if driver is not None:
            driver.quit()
        if server is not None and server.running():
            server.kill()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
