"""Name, variant and postcode tables for the synthetic population in `benchmarks.population`.

Every table here was written for this benchmark. Lists are ordered from most to least common,
because the generator gives them Zipf-like weights by rank. The order follows the rough shape of
published baby-name and surname frequencies for England and Wales. It is not a count of anything
(unverified), and it only needs to be plausible, with a heavy head and a long tail.

Names are grouped by *origin of the name*, so that a family's given names and surname fit together
and a benchmark can report linkage quality by name group, as [43] asks. This is a property of the
name string, never an ethnicity. Some names appear in more than one group, as they do in England.
"""

from __future__ import annotations

import random
from itertools import accumulate


def _words(text: str) -> tuple[str, ...]:
    # Underscores stand for spaces, so multi-word surnames survive the whitespace split.
    return tuple(word.replace("_", " ") for word in text.split())


NAME_ORIGINS: tuple[str, ...] = (
    "british_irish",
    "south_asian",
    "african_caribbean",
    "eastern_european",
    "other",
)

BOYS: dict[str, tuple[str, ...]] = {
    "british_irish": _words("""
        Noah Oliver George Leo Arthur Oscar Theodore Freddie Harry Theo Jack Charlie Finley
        Archie Henry Teddy Alfie Lucas Thomas Isaac Jacob William Tommy Alexander Edward Joshua
        James Ethan Reuben Max Albie Hugo Jaxon Arlo Rory Harrison Louie Daniel Ezra Finn Jude
        Samuel Sonny Toby Mason Logan Dylan Riley Benjamin Joseph Jenson Ronnie Frankie Roman
        Carter Ollie Jake Harvey Callum Kai Liam Connor Jamie Lewis Ryan Tyler Kian Owen Matthew
        Nathan Luke Michael Aaron Adam Cameron Bobby Stanley Ralph Zachary Christopher Anthony
        Patrick Robert Richard Jayden Rhys Seán Oisín Cian Darragh Niall Ciarán Euan Gethin
        Frederick Nathaniel Elliot Spencer Bradley Kyle Declan"""),
    "south_asian": _words("""
        Muhammad Mohammed Ibrahim Yusuf Hamza Ayaan Zayn Mohammad Ali Abdullah Ismail Ahmed
        Aarav Arjun Rayan Zakariya Idris Musa Haris Rohan Krish Aryan Vihaan Dev Kabir Sahil
        Rehan Jaskaran Harjot Arman Veer Aayan Yahya Ilyas"""),
    "african_caribbean": _words("""
        Elijah Malachi Isaiah Josiah Joshua Daniel Samuel David Jayden Tyrese Zion Nathaniel
        Oluwaseun Ayomide Tobiloba Chukwuemeka Emeka Chinedu Obinna Kwame Kofi Kwabena Yaw
        Abdirahman Abdi Mohamed Jamal Kairo Tobi Femi Tunde"""),
    "eastern_european": _words("""
        Jakub Kacper Szymon Filip Antoni Jan Aleksander Franciszek Mikołaj Wojciech Łukasz
        Michał Bartosz Oliwer Dawid Andrei Alexandru Ștefan Matei Luka Matas Lukas Dominik
        Maksim Nikola Tomasz Mateusz Ionuț"""),
    "other": _words("""
        Omar Adam Yusuf Mustafa Ahmad Hassan Kareem José João Mateo Santiago Diego Luca
        Leonardo Francesco Giovanni Ömer Emir Kerem Yiğit Wei Hao Jun Ming Minh Hugo Rafael"""),
}

GIRLS: dict[str, tuple[str, ...]] = {
    "british_irish": _words("""
        Olivia Amelia Isla Lily Ava Freya Ivy Florence Isabella Mia Willow Rosie Sophia Evie
        Grace Poppy Ella Sophie Elsie Charlotte Emily Evelyn Daisy Harper Sienna Phoebe Millie
        Matilda Ruby Isabelle Luna Alice Maisie Violet Esme Erin Hallie Eliza Bonnie Ada Orla
        Penelope Emilia Ellie Aria Georgia Scarlett Eleanor Harriet Chloe Lucy Hannah Jessica
        Holly Megan Katie Lauren Abigail Bethany Amber Molly Lola Imogen Thea Darcie Elizabeth
        Victoria Rebecca Niamh Caitlin Zoë Chloé Leah Summer Skye Madison Paige Jasmine Rose
        Maya Margot Mabel Iris Nancy Edith Annabelle Beatrice Clara Heidi Lyla Jade Courtney
        Róisín Aoife Siobhán Saoirse Renée Mollie Abbie Tia"""),
    "south_asian": _words("""
        Maryam Aisha Fatima Zainab Hafsa Amira Inaya Eesha Anaya Aaliyah Khadija Safa Zara
        Alisha Ayesha Priya Ananya Diya Riya Simran Jasleen Harleen Anika Mehreen Sana Noor
        Hania Iqra Laiba Myra Navneet Amna"""),
    "african_caribbean": _words("""
        Amara Nia Imani Zuri Precious Blessing Favour Destiny Tiana Kiara Shanice Chiamaka
        Adaeze Ifeoma Temitope Oluwatobi Folake Abena Ama Akosua Efua Hodan Ayan Fartun Hibo
        Nimo Amani Ayomide Grace Esther"""),
    "eastern_european": _words("""
        Zuzanna Julia Zofia Hanna Maja Lena Oliwia Alicja Wiktoria Natalia Gabriela Antonina
        Amelia Ioana Maria Andreea Elena Ana-Maria Daria Emilija Gabija Ugnė Viktorija
        Anastasia Sofiya Łucja Kinga Milena"""),
    "other": _words("""
        Sofía Inês Lucía Valentina Giulia Chiara Francesca Layla Yasmin Nour Mariam Rania Elif
        Zeynep Defne Mei Xin Yan Ying Lin Linh Ana Beatriz Gabriela Salma Leila Malak Aylin"""),
}

SURNAMES: dict[str, tuple[str, ...]] = {
    "british_irish": _words("""
        Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson
        Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Jackson Wood
        Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen
        James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly
        Cook Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Marshall
        Anderson Simpson Ellis Adams Wilkinson Foster Chapman Powell Webb Rogers Gray Mason Hunt
        Holmes Palmer Mills Barnes Knight Lloyd Butler Russell Barker Fisher Stevens Jenkins
        Dixon Fletcher Fox Howard Owen Gibson Reid Pearson Kennedy Ryan Sullivan Lawrence Hunter
        Burton Graham Murray Campbell Stewart Grant Francis Henry Douglas O'Brien O'Connor
        O'Neill O'Sullivan O'Reilly O'Donnell O'Leary McDonald McCarthy McLaughlin MacDonald
        MacKenzie McKenzie McGregor McAllister McGuinness Byrne Doyle Walsh Gallagher Quinn
        Brennan Nolan Kavanagh Rees Pugh Bowen Vaughan Llewellyn Cohen Levy Smith-Jones
        Taylor-Brown Lloyd-Davies Ashworth-Clarke Fox-Turner Price-Evans Hughes-Williams
        Moore-Bennett Harding-Wright Brooks Gordon Payne Andrews Armstrong Berry Day Dawson
        Hudson Hart Perry Spencer Lowe Rose Atkinson Booth Bradley Hayes Kaur-Walker"""),
    "south_asian": _words("""
        Khan Ahmed Ali Hussain Patel Singh Shah Akhtar Iqbal Mahmood Rahman Islam Uddin Miah
        Hossain Chowdhury Sharma Gupta Kumar Mistry Parmar Chauhan Sandhu Gill Dhillon Sidhu
        Bains Rehman Aslam Yousaf Qureshi Malik Raja Mirza Javed Anwar Nawaz Riaz Sheikh Begum"""),
    "african_caribbean": _words("""
        Okafor Okoro Adeyemi Adebayo Olawale Oladipo Balogun Eze Nwosu Obi Okonkwo Mensah
        Boateng Owusu Asante Osei Appiah Agyeman Mohamed Hassan Abdi Farah Warsame Jama Osman
        Campbell Francis Grant Brown Williams Johnson Thomas Clarke Oyelaran-Smith"""),
    "eastern_european": _words("""
        Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański
        Woźniak Dąbrowski Kozłowski Jankowski Mazur Kwiatkowski Krawczyk Piotrowski Grabowski
        Popescu Ionescu Popa Stan Dumitru Constantin Radu Kazlauskas Jankauskas Petrauskas
        Horvat Novak Ivanov Petrov Balogh Nagy Kovács"""),
    "other": _words("""
        Chen Wang Li Zhang Liu Wong Lam Cheung Nguyen Tran Pham Santos Silva De_Souza Da_Silva
        Ferreira Gonçalves Rodrigues Fernandes García Martínez López Fernández Rossi Russo
        Esposito Romano Yılmaz Kaya Demir Şahin Çelik Öztürk Al-Rashid El-Sayed Abdullah Haddad
        Khalil Mansour Nasser"""),
}

# Canonical name -> forms another agency may hold: nicknames and short forms, anglicised forms,
# and transliterations [36]. Read as "Canonical: variant variant ...", one entry per line.
_VARIANT_TEXT = """
William: Will Bill Billy Liam | Elizabeth: Beth Lizzie Liz Libby Betsy Eliza
Alexander: Alex Xander Sandy | Thomas: Tom Tommy | James: Jim Jimmy Jamie | Joseph: Joe Joey
Samuel: Sam Sammy | Benjamin: Ben Benji | Daniel: Dan Danny | Matthew: Matt Matty
Michael: Mike Mikey Mick | Christopher: Chris Kit | Nathan: Nate | Nathaniel: Nate Nat
Edward: Ed Eddie Ted Teddy | Theodore: Theo Ted Teddy | Frederick: Fred Freddie Freddy
Freddie: Freddy Fred | Henry: Harry Hal | Harrison: Harry | Oliver: Ollie Olly | Ollie: Olly
Jacob: Jake | Joshua: Josh | Zachary: Zach Zac Zak | Isaac: Zac Ike | Alfie: Alf | Archie: Arch
Louie: Louis Lewie | Anthony: Tony Ant | Patrick: Paddy Pat | Cameron: Cam | Callum: Cal Calum
Robert: Rob Bob Bobby Robbie | Richard: Rich Richie Dick | Connor: Conor | Finley: Finlay Finn
Jayden: Jaden Jaiden | Rhys: Reece Rees | Kai: Kye | Euan: Ewan | Seán: Sean Shaun Shawn
Ciarán: Ciaran Kieran | Oisín: Oisin | Elliot: Elliott | Gethin: Geth | Reuben: Ruben
Olivia: Liv Livvy | Amelia: Millie Amy Mia | Isabella: Bella Izzy Issy | Isabelle: Izzy Isabel
Sophia: Sophie Sofia | Sophie: Sophy Soph | Charlotte: Lottie Charlie | Eleanor: Ellie Nell Nora
Emily: Em Emmy | Evelyn: Evie Eve | Florence: Flo Florrie | Matilda: Tilly Tillie Tilda
Harriet: Hattie | Jessica: Jess Jessie | Rebecca: Becky Becca Bex | Victoria: Vicky Tori
Abigail: Abbie Abby Gail | Katie: Kate Katy | Bethany: Beth | Imogen: Immy | Penelope: Penny
Hannah: Hanna | Chloe: Chloé Chlo | Chloé: Chloe | Zoë: Zoe Zoey | Renée: Renee | Niamh: Neve
Siobhán: Siobhan | Caitlin: Kaitlyn Katelyn | Róisín: Roisin | Molly: Mollie | Mollie: Molly
Darcie: Darcy | Leah: Lea Lia | Maisie: Maisy | Madison: Maddie | Annabelle: Annabel Belle
Beatrice: Bea Trixie | Ellie: Elle | Scarlett: Scarlet | Lyla: Lila Lilah | Abbie: Abby Abigail
Muhammad: Mohammed Mohammad Muhammed Mohamed Mo | Mohammed: Muhammad Mohammad Mohamed Mo
Mohammad: Muhammad Mohammed Mohamad | Mohamed: Mohammed Mohamud Muhammad | Ahmed: Ahmad
Ahmad: Ahmed | Yusuf: Yousuf Yousef Yusef | Ibrahim: Ebrahim Ibraheem | Ismail: Ismael
Zakariya: Zakaria Zachariah Zak | Hamza: Hamzah | Ayaan: Ayan | Zayn: Zain Zane
Rayan: Rayyan | Abdullah: Abdulla | Idris: Idrees | Musa: Moosa | Haris: Harris | Ilyas: Elias
Yahya: Yahia | Aisha: Ayesha Aysha Aishah | Ayesha: Aisha | Fatima: Fatimah Fatema
Zainab: Zaynab Zenab | Maryam: Mariam Maryum | Khadija: Khadijah | Hafsa: Hafsah
Inaya: Inayah | Aaliyah: Aliyah Aaliya | Eesha: Esha Isha | Harleen: Harlene | Amna: Amina
Oluwaseun: Seun | Tobiloba: Tobi | Ayomide: Ayo | Chukwuemeka: Emeka | Chiamaka: Amaka
Oluwatobi: Tobi | Temitope: Temi Tope | Adaeze: Ada | Ifeoma: Ife | Abdirahman: Abdi
Tyrese: Tyreese | Malachi: Malakai | Elijah: Eli | Isaiah: Isiah | Josiah: Josh | Nimo: Nimco
Folake: Fola | Femi: Oluwafemi | Tunde: Babatunde | Jakub: Kuba Jacob Jakob
Kacper: Kasper Casper | Szymon: Simon | Filip: Philip Phillip | Antoni: Antek Anthony
Jan: John | Aleksander: Alex Olek Alexander | Franciszek: Franek | Mikołaj: Mikolaj Nicholas
Wojciech: Wojtek | Łukasz: Lukasz Luke | Michał: Michal Michael | Bartosz: Bartek
Dawid: David | Andrei: Andrew | Alexandru: Alex | Ștefan: Stefan Stephen | Ionuț: Ionut
Luka: Luca | Lukas: Lucas | Dominik: Dominic | Maksim: Maxim Max | Tomasz: Tomek Tom
Mateusz: Matthew | Zuzanna: Zuza Susanna | Zofia: Zosia Sofia | Hanna: Hannah
Oliwia: Olivia | Alicja: Alicia | Wiktoria: Victoria | Natalia: Natalie | Gabriela: Gabi
Ioana: Joanna | Andreea: Andrea | Ana-Maria: Anamaria | Emilija: Emilia | Ugnė: Ugne
Viktorija: Viktoria | Anastasia: Nastya | Sofiya: Sofia | Daria: Dasha | Łucja: Lucja Lucy
José: Jose | João: Joao | Mateo: Matteo | Santiago: Santi | Leonardo: Leo | Giovanni: Gianni
Sofía: Sofia | Inês: Ines | Lucía: Lucia | Giulia: Julia | Francesca: Fran | Yasmin: Yasmine
Layla: Laila Leila | Mariam: Maryam | Nour: Noor | Noor: Nour | Ömer: Omer Omar | Yiğit: Yigit
"""

NAME_VARIANTS: dict[str, tuple[str, ...]] = {}
for _entry in _VARIANT_TEXT.replace("\n", "|").split("|"):
    if _entry.strip():
        _name, _forms = _entry.split(":")
        NAME_VARIANTS[_name.strip()] = tuple(_forms.split())

# Outward codes of Birmingham City Council's area, the largest English LA by children; the
# home LA of the synthetic population. B22, B39 and B41 are unused districts.
HOME_OUTWARD_CODES: tuple[str, ...] = tuple(
    [f"B{n}" for n in range(1, 22)] + [f"B{n}" for n in range(23, 39)] + ["B42", "B44", "B45"]
)

# Out-of-area codes: neighbouring LAs (placements, moves) and far-off ones (temporary
# accommodation, family elsewhere). Includes the A9A and AA9A shapes (W1T, EC1V) that a
# postcode normaliser must also handle.
OUT_OF_AREA_OUTWARD_CODES: tuple[str, ...] = _words("""
    B66 B67 B68 B69 B70 B71 B90 B91 B92 B93 WS1 WS2 WV1 WV10 DY1 DY4 CV1 CV6 M14 LS8 NG7 E17
    N17 SE15 W1T EC1V E1W L8 BS5 CF10""")

# The final two letters of a postcode never use C, I, K, M, O or V.
INWARD_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def random_postcode(rng: random.Random, out_of_area_rate: float) -> str:
    """A valid-format postcode: home-LA district unless out of area, then sector and unit."""
    codes = OUT_OF_AREA_OUTWARD_CODES if rng.random() < out_of_area_rate else HOME_OUTWARD_CODES
    unit = "".join(rng.choices(INWARD_UNIT_LETTERS, k=2))
    return f"{rng.choice(codes)} {rng.randrange(10)}{unit}"


def feminine_surname(surname: str, sex: str) -> str:
    """Polish surnames in -ski/-cki/-dzki take -ska/-cka/-dzka for a girl."""
    for masculine, feminine in (("dzki", "dzka"), ("ski", "ska"), ("cki", "cka")):
        if sex == "F" and surname.endswith(masculine):
            return surname[: -len(masculine)] + feminine
    return surname


class NamePicker:
    """Draws name origins and names with Zipf-like weights by rank.

    The rank offsets flatten the head of each list. The most common given name then goes to
    about 2-3% of its sex and group, and 'Smith' to about 2% of the group, rather than the
    third of everyone that a plain 1/rank law would give.
    """

    GIVEN_OFFSET, SURNAME_OFFSET = 15.0, 20.0

    def __init__(self, rng: random.Random, origin_shares: dict[str, float]) -> None:
        self.rng = rng
        self.origins = [o for o in NAME_ORIGINS if origin_shares.get(o, 0.0) > 0]
        self.origin_cum = list(accumulate(origin_shares[o] for o in self.origins))
        self.tables = {"M": BOYS, "F": GIRLS, "surname": SURNAMES}
        self.cum: dict[tuple[str, str], list[float]] = {}
        self.pooled: dict[str, list[str]] = {}
        self.pooled_cum: dict[str, list[float]] = {}
        for key, table in self.tables.items():
            offset = self.SURNAME_OFFSET if key == "surname" else self.GIVEN_OFFSET
            pooled_weights: list[float] = []
            for origin in NAME_ORIGINS:
                weights = [1.0 / (rank + offset) for rank in range(1, len(table[origin]) + 1)]
                self.cum[key, origin] = list(accumulate(weights))
                # A pooled draw mixes the groups in population proportion.
                share = origin_shares.get(origin, 0.0) / sum(weights)
                pooled_weights += [w * share for w in weights]
                self.pooled.setdefault(key, []).extend(table[origin])
            self.pooled_cum[key] = list(accumulate(pooled_weights))

    def origin(self) -> str:
        return self.rng.choices(self.origins, cum_weights=self.origin_cum)[0]

    def name(self, key: str, origin: str, mixed: bool = False) -> str:
        """A name for key 'M', 'F' or 'surname'; `mixed` draws from all groups together."""
        if mixed:
            return self.rng.choices(self.pooled[key], cum_weights=self.pooled_cum[key])[0]
        return self.rng.choices(self.tables[key][origin], cum_weights=self.cum[key, origin])[0]
