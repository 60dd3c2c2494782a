"""`serve status`'s report, from answers of Serve's REST API as a head gives them (and as odd ones come)."""

from seedcore_boot.serve import appstatus

RUNNING = {"status": "RUNNING", "route_prefix": "/", "message": "",
           "deployments": {"Classifier": {"status": "HEALTHY"}}}
FAILED = {"status": "DEPLOY_FAILED", "route_prefix": "/b", "message": "",
          "deployments": {"B": {"status": "UNHEALTHY", "message": "Traceback...\n  File x\nValueError: bad weights\n"}}}


def test_healthy_only_when_there_is_an_app_and_every_one_is_running():
    assert appstatus.report({"applications": {"ml": RUNNING}})["healthy"] is True
    assert appstatus.report({"applications": {"ml": RUNNING, "b": FAILED}})["healthy"] is False
    assert appstatus.report({"applications": {}})["healthy"] is False
    assert appstatus.report({})["healthy"] is False


def test_the_json_report_names_each_apps_status_route_and_deployments():
    got = appstatus.report({"applications": {"ml": RUNNING, "b": FAILED, "odd": "not an app"}})["applications"]
    assert got == {"ml": {"status": "RUNNING", "route_prefix": "/", "message": "",
                          "deployments": {"Classifier": "HEALTHY"}},
                   "b": {"status": "DEPLOY_FAILED", "route_prefix": "/b", "message": "",
                         "deployments": {"B": "UNHEALTHY"}}}


def test_a_line_per_app_with_the_error_itself_when_it_is_not_running():
    lines = appstatus.text_lines({"applications": {"ml": RUNNING, "b": FAILED}})
    assert lines[0].split() == ["ml", "RUNNING", "/"]  # nothing more for a RUNNING app
    assert lines[1].split()[:3] == ["b", "DEPLOY_FAILED", "/b"] and lines[1].endswith("ValueError: bad weights")
    assert appstatus.text_lines({"applications": {}}) == ["no Serve applications"]
