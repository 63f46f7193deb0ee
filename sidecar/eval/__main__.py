from sidecar.eval.cli import main

raise SystemExit(main())
