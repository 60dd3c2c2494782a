"""Ray Serve on a head: the config, checked and planned before Ray starts (config), its deploy through the
dashboard's REST API (deploy), the patch that lets Serve leave a draining node, installed as Ray's worker setup
hook (servedrain), and the sample application (ml_app, with default_serve.yaml).

May import: host, ray, config, errors, log. Not tls (the two concerns are independent), not node. servedrain
and ml_app run inside Ray's own processes and import nothing else of ours; seedcore_boot.servedrain and
seedcore_boot.ml_app keep their old import paths working (a head hands the first to Ray; users' Serve
configs name the second).
"""
