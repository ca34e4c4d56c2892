from tillit.cli import main

raise SystemExit(main())
