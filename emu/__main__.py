from emu.entry import main

raise SystemExit(main())
