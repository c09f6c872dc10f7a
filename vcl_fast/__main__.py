from vcl_fast.cli import main

raise SystemExit(main())
