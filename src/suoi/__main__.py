from suoi.cli.main import main

raise SystemExit(main())
