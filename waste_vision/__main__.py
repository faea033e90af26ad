from waste_vision.commands.cli import main

raise SystemExit(main())
