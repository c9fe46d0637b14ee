from dfs.cli.main import main

raise SystemExit(main())
