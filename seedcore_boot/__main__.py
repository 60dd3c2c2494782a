from seedcore_boot.cli import main

main()
