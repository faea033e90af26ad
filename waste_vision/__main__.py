from waste_vision.cli import main

raise SystemExit(main())
