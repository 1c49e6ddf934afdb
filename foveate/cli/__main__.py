from foveate.cli import main

main()
