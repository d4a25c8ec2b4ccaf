from sparklift.cli import main

raise SystemExit(main())
