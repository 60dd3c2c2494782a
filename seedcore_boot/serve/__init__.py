"""Ray Serve on a head: the config, checked and planned before Ray starts (config), its deploy through the
dashboard's REST API (deploy) and what `serve status` reports of it (appstatus), the patch that lets Serve
leave a draining node, installed as Ray's worker setup hook (servedrain), and default_serve.yaml, which
deploys the sample application (seedcore_boot/ml_app.py, at the top: see below).

May import: host, ray, config, errors, log. Not tls (the two concerns are independent), not node. servedrain
runs inside Ray's own processes and imports nothing else of ours; seedcore_boot.servedrain keeps its old
import path working (a head hands it to Ray). The sample application stays seedcore_boot/ml_app.py itself,
not a re-export: users' Serve configs name it, and Serve pickles a deployment's class by its module path, so
a replica on a worker of an older seedcore-boot must find the class where that version keeps it.
"""
